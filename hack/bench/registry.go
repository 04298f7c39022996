package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// repoName is the repository both big images are pushed to, so the second
// image's shared layers are the same blobs.
const repoName = "bench/big"

// registry is Debian's docker-registry (distribution 2.8) serving plain
// http on a loopback port, storing in a directory of the work dir. Copied
// from hack/pullbench.
type registry struct {
	Host string // 127.0.0.1:port
	proc *process
}

// startRegistry starts docker-registry and waits until it answers /v2/.
func startRegistry(ctx context.Context, dir string) (*registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry not installed (make deps): %w", err)
	}
	host, err := freePort()
	if err != nil {
		return nil, err
	}
	// No access log: one line per request would be noise, and writing it
	// costs the registry time during the transfer floor.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "storage"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess(bin, []string{"serve", cfgPath}, filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	r := &registry{Host: host, proc: p}
	if err := r.waitReady(ctx, 15*time.Second); err != nil {
		r.Stop()
		return nil, fmt.Errorf("%w\n%s", err, p.logTail())
	}
	return r, nil
}

// freePort returns a loopback address with a port that was free a moment
// ago; docker-registry cannot be handed a listening socket.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (r *registry) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.proc.exited() {
			return fmt.Errorf("docker-registry exited: %v", r.proc.err)
		}
		if resp, err := client.Get(r.url("/v2/")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("docker-registry did not answer within %s", timeout)
}

// Stop ends the registry (SIGTERM, then SIGKILL).
func (r *registry) Stop() { r.proc.stop(5 * time.Second) }

func (r *registry) url(p string) string { return "http://" + r.Host + p }

// BlobURL is where a layer is downloaded from.
func (r *registry) BlobURL(d digest.Digest) string {
	return r.url("/v2/" + repoName + "/blobs/" + d.String())
}

// Push uploads the image's blobs that the registry lacks, then its
// manifest under its tag.
func (r *registry) Push(ctx context.Context, im *image) error {
	for _, l := range im.Layers {
		if err := r.pushFile(ctx, l.Path, l.Digest, l.Size); err != nil {
			return err
		}
	}
	if err := r.pushBytes(ctx, im.Config, im.ConfigDigest()); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("/v2/"+repoName+"/manifests/"+im.Tag), bytes.NewReader(im.Manifest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	return expect(http.DefaultClient.Do(req))(http.StatusCreated)
}

func (r *registry) pushFile(ctx context.Context, path string, d digest.Digest, size int64) error {
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

func (r *registry) pushBytes(ctx context.Context, b []byte, d digest.Digest) error {
	if r.has(ctx, d) {
		return nil
	}
	return r.upload(ctx, bytes.NewReader(b), d, int64(len(b)))
}

func (r *registry) has(ctx context.Context, d digest.Digest) bool {
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
func (r *registry) upload(ctx context.Context, body io.Reader, d digest.Digest, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/v2/"+repoName+"/blobs/uploads/"), nil)
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
