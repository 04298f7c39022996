package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads the image's blobs that the registry lacks, then its
// manifest under its tag in RepoName.
func (r *Registry) Push(ctx context.Context, im *Image) error {
	for _, l := range im.Layers {
		if err := r.pushFile(ctx, l.Path, l.Digest, l.Size); err != nil {
			return err
		}
	}
	if err := r.pushBytes(ctx, im.Config, im.ConfigDigest()); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("/v2/"+RepoName+"/manifests/"+im.Tag), bytes.NewReader(im.Manifest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	return expect(http.DefaultClient.Do(req))(http.StatusCreated)
}

func (r *Registry) pushFile(ctx context.Context, path string, d digest.Digest, size int64) error {
	if r.has(ctx, d) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.upload(ctx, f, d, size)
}

func (r *Registry) pushBytes(ctx context.Context, b []byte, d digest.Digest) error {
	if r.has(ctx, d) {
		return nil
	}
	return r.upload(ctx, bytes.NewReader(b), d, int64(len(b)))
}

func (r *Registry) has(ctx context.Context, d digest.Digest) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.BlobURL(d), nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// upload is a monolithic upload: POST opens an upload session, one PUT
// with ?digest= sends the whole blob and completes it.
func (r *Registry) upload(ctx context.Context, body io.Reader, d digest.Digest, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/v2/"+RepoName+"/blobs/uploads/"), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err := expect(resp, err)(http.StatusAccepted); err != nil {
		return fmt.Errorf("starting upload of %s: %w", d, err)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload location: %w", err)
	}
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, withDigest(loc, d), body)
	if err != nil {
		return err
	}
	put.ContentLength = size
	put.Header.Set("Content-Type", "application/octet-stream")
	if err := expect(http.DefaultClient.Do(put))(http.StatusCreated); err != nil {
		return fmt.Errorf("uploading %s: %w", d, err)
	}
	return nil
}

func withDigest(u *url.URL, d digest.Digest) string {
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// expect closes the response and checks its status, with the body of an
// unexpected one in the error (the registry explains there).
func expect(resp *http.Response, err error) func(want int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(b))
		}
		return nil
	}
}
