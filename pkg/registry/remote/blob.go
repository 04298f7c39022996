package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
)

// maxResumes bounds how often one blob download reconnects after a broken
// connection before it gives up.
const maxResumes = 5

// blobReader is a verified, resumable download of one blob.
type blobReader struct {
	ctx      context.Context
	repo     *Repository
	dgst     digest.Digest
	size     int64
	verifier digest.Digester
	eps      []hosts.Endpoint
	epIndex  int
	body     io.ReadCloser
	offset   int64
	resumes  int
	errs     endpointErrors
	done     bool
}

// open connects at the current offset, trying endpoints in order from the
// current one.
func (b *blobReader) open() error {
	for b.epIndex < len(b.eps) {
		ep := b.eps[b.epIndex]
		body, err := b.openAt(ep)
		if err == nil {
			b.body = body
			return nil
		}
		b.errs = append(b.errs, err)
		if !fallThrough(b.ctx, err) {
			break
		}
		b.epIndex++
	}
	return b.errs.err("fetching blob " + b.dgst.String() + " of " + b.repo.Host + "/" + b.repo.Name)
}

func (b *blobReader) openAt(ep hosts.Endpoint) (io.ReadCloser, error) {
	var hdr http.Header
	if b.offset > 0 {
		hdr = http.Header{"Range": {"bytes=" + strconv.FormatInt(b.offset, 10) + "-"}}
	}
	resp, err := b.repo.do(b.ctx, ep, http.MethodGet, "/blobs/"+b.dgst.String(), hdr)
	if err != nil {
		return nil, err
	}
	if err := checkResponse(resp, http.StatusOK, http.StatusPartialContent); err != nil {
		return nil, err
	}
	if b.offset > 0 && resp.StatusCode == http.StatusOK {
		// The server ignored Range: skip what we already have.
		if _, err := io.CopyN(io.Discard, resp.Body, b.offset); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("%s: skipping to offset %d: %w", ep.URL.Host, b.offset, err)
		}
	}
	return resp.Body, nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	for {
		if b.body == nil {
			if err := b.open(); err != nil {
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		if n > 0 {
			b.offset += int64(n)
			b.verifier.Hash().Write(p[:n])
			if b.repo.Progress != nil {
				b.repo.Progress(n)
			}
			if b.size >= 0 && b.offset > b.size {
				return n, fmt.Errorf("blob %s is larger than its declared size %d: %w", b.dgst, b.size, errdefs.ErrDataLoss)
			}
		}
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF:
			if b.size >= 0 && b.offset < b.size {
				// Cut short: resume unless the transfer keeps failing.
				if rerr := b.reconnect(io.ErrUnexpectedEOF); rerr != nil {
					return n, rerr
				}
				if n > 0 {
					return n, nil
				}
				continue
			}
			if got := b.verifier.Digest(); got != b.dgst {
				return n, fmt.Errorf("blob content has digest %s, expected %s: %w", got, b.dgst, errdefs.ErrDataLoss)
			}
			b.done = true
			return n, io.EOF
		default:
			if b.ctx.Err() != nil {
				return n, b.ctx.Err()
			}
			if rerr := b.reconnect(err); rerr != nil {
				return n, rerr
			}
			if n > 0 {
				return n, nil
			}
		}
	}
}

func (b *blobReader) reconnect(cause error) error {
	b.body.Close()
	b.body = nil
	b.resumes++
	if b.resumes > maxResumes {
		return fmt.Errorf("blob %s: connection broke %d times, last: %w", b.dgst, b.resumes, cause)
	}
	return nil
}

func (b *blobReader) Close() error {
	if b.body != nil {
		return b.body.Close()
	}
	return nil
}
