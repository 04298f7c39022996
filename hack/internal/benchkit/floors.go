package benchkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The floors are what a pull cannot beat on this machine: fetching the
// blobs from the same registry with curl, and decompressing (and writing)
// them with the same gzip package cri-rt uses. Everything reads from the
// page cache, as the pulls do.

// TimeCurl downloads urls to /dev/null, one after another or all at once:
// the transfer floor.
func TimeCurl(ctx context.Context, urls []string, parallel bool) (time.Duration, error) {
	start := time.Now()
	err := forEach(len(urls), parallel, func(i int) error {
		cmd := exec.CommandContext(ctx, "curl", "-sS", "--fail", "-o", "/dev/null", urls[i])
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("curl %s: %v: %s", urls[i], err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	return time.Since(start), err
}

// TimeGunzip decompresses the layer files to io.Discard, on one goroutine
// or one per layer: the decompression floor.
func TimeGunzip(paths []string, parallel bool) (time.Duration, error) {
	start := time.Now()
	err := forEach(len(paths), parallel, func(i int) error {
		return withGunzip(paths[i], func(r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
	return time.Since(start), err
}

// TimeUntar decompresses and unpacks each layer into its own directory
// below dst (as snapshots are), one goroutine per layer: the unpack floor.
// It writes data, modes and symlinks, but skips what cri-rt does besides
// (owners, times, xattrs, whiteouts, diff ID check), so it is a floor, not
// a rival.
func TimeUntar(ctx context.Context, paths []string, dst string) (time.Duration, error) {
	start := time.Now()
	err := forEach(len(paths), true, func(i int) error {
		return withGunzip(paths[i], func(r io.Reader) error {
			return untar(ctx, r, filepath.Join(dst, fmt.Sprint(i)))
		})
	})
	return time.Since(start), err
}

// forEach runs fn for 0..n-1, in order (stopping at the first error) or
// all at once, and returns the errors.
func forEach(n int, parallel bool, fn func(int) error) error {
	if !parallel {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
