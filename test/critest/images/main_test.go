package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// testProgs are the helper programs, compiled once for all tests.
var testProgs map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "critest-progs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testProgs, err = BuildPrograms(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stubApplets stands in for `busybox --list` when no real busybox is at
// hand; it covers every applet critest invokes.
var stubApplets = []string{
	"[", "brctl", "cat", "chmod", "dd", "echo", "grep", "hostname", "id", "ls", "mkdir",
	"mount", "netstat", "nc", "pidof", "ping", "seq", "sh", "sleep", "sync", "top", "touch", "wget",
}

// testBusybox returns a real busybox when CRITEST_BUSYBOX_DEB names
// Debian's busybox package, else a stub: any static ELF (so no shared
// libraries are pulled in) with a fixed applet list. Catalogue structure,
// digests and configs do not depend on which one is used.
func testBusybox(t *testing.T) (*Busybox, bool) {
	t.Helper()
	if deb := os.Getenv("CRITEST_BUSYBOX_DEB"); deb != "" {
		bb, err := BusyboxFromDeb(context.Background(), deb, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return bb, true
	}
	return &Busybox{Binary: testProgs["pause"], Applets: stubApplets}, false
}

func buildAll(t *testing.T, bb *Busybox) []Built {
	t.Helper()
	b := &Builder{Busybox: bb, Programs: testProgs}
	built, err := b.Build(context.Background(), Catalogue())
	if err != nil {
		t.Fatal(err)
	}
	return built
}

// newRegistry starts go-containerregistry's in-process registry on
// 127.0.0.1 and returns its host:port.
func newRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// fileInfo is what the tests look at in an image's merged filesystem.
type fileInfo struct {
	typ      byte
	mode     int64
	uid, gid int
	link     string
	body     string
}

// filesystem returns the merged filesystem of an image by path (without
// leading slash; directories without their trailing slash).
func filesystem(t *testing.T, img v1.Image) map[string]fileInfo {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]fileInfo{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = fileInfo{h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, string(body)}
	}
}
