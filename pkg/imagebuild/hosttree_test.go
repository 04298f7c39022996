package imagebuild

import (
	"archive/tar"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestHostTree(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "bin"), 0o750))
	must(os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("tool"), 0o700))
	must(os.WriteFile(filepath.Join(src, "README"), []byte("hi"), 0o644))
	must(os.Symlink("bin/tool", filepath.Join(src, "link")))

	build := func() *Blob {
		es, err := HostTree("/opt/app", src)
		must(err)
		b, err := (&Layer{Entries: es}).Build()
		must(err)
		return b
	}
	first := build()
	// Timestamps on the host must not leak into the layer.
	must(os.Chtimes(filepath.Join(src, "README"), time.Now(), time.Unix(12345, 0)))
	if second := build(); second.Digest != first.Digest {
		t.Fatal("host mtimes changed the layer digest")
	}
	hdrs, bodies := readTar(t, first)
	got := map[string]*tar.Header{}
	for _, h := range hdrs {
		got[h.Name] = h
	}
	if h := got["opt/app/bin/"]; h == nil || h.Mode != 0o750 {
		t.Errorf("bin dir: %+v", h)
	}
	if h := got["opt/app/bin/tool"]; h == nil || h.Mode != 0o700 || bodies["opt/app/bin/tool"] != "tool" {
		t.Errorf("tool: %+v", h)
	}
	if h := got["opt/app/link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "bin/tool" {
		t.Errorf("link: %+v", h)
	}

	fifo := filepath.Join(src, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err == nil {
		if _, err := HostTree("/x", src); err == nil {
			t.Error("a FIFO must be rejected")
		}
	}
}
