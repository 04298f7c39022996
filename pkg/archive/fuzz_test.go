//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzApplyLayer applies arbitrary (tar, gzip or zstd) bytes and checks
// that, whatever happens, nothing outside the layer directory changes.
func FuzzApplyLayer(f *testing.F) {
	requireRoot(f)
	// Seeds aim at "../outside", the sandbox's sibling of the layer.
	for _, entries := range [][]tarEntry{
		{dirEntry("a/"), reg("a/f", "x"), symlinkEntry("a/s", "/etc"), hardlinkEntry("h", "a/f")},
		{symlinkEntry("sym", ".."), reg("sym/x", "x")},
		{symlinkEntry("sym", "../outside"), reg("sym/victim", "pwned")},
		{symlinkEntry("sym", "../outside"), hardlinkEntry("h", "sym/victim")},
		{symlinkEntry("sym", "../outside"), dirEntry("sym/")},
		{reg("../outside/victim", "pwned")},
		{hardlinkEntry("h", "../outside/victim")},
		{reg(".wh.x", ""), reg("d/.wh..wh..opq", ""), reg(".wh...", "")},
		{symlinkEntry("f", "../outside/victim"), reg("f", "pwned")},
		{withXattr(reg("f", ""), "trusted.overlay.opaque", "y")},
	} {
		layer := mkTar(f, entries...)
		f.Add(layer)
		f.Add(gzipBytes(f, layer))
	}

	f.Fuzz(func(t *testing.T, layer []byte) {
		if tooBig(layer) {
			t.Skip("declares more data than the fuzzer should write")
		}
		s := newSandbox(t)
		before := s.state(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ApplyLayer(ctx, s.dir, bytes.NewReader(layer)) // errors are fine, escapes are not
		if after := s.state(t); !slices.Equal(before, after) {
			t.Fatalf("outside of the layer directory changed:\n%s\n---\n%s",
				strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
		for _, p := range strayFiles {
			if _, err := os.Lstat(p); err == nil {
				os.RemoveAll(p)
				t.Fatalf("%s was created", p)
			}
		}
	})
}

// tooBig reports whether a fuzz input would make ApplyLayer write a lot:
// a tiny (sparse) tar header can declare an exabyte file, which is a
// valid layer, just not one to fuzz with.
func tooBig(layer []byte) bool {
	rc, _, err := Decompress(bytes.NewReader(layer))
	if err != nil {
		return false
	}
	defer rc.Close()
	tr := tar.NewReader(io.LimitReader(rc, 64<<20))
	var total int64
	for {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		if total += hdr.Size; hdr.Size > 16<<20 || total > 64<<20 {
			return true
		}
	}
}
