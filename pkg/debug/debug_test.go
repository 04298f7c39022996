package debug

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "debug.sock")
	s, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if body := get(t, c, "http://debug/debug/pprof/goroutine?debug=1"); !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile: %.200s", body)
	}
	// A CPU profile is a gzipped protobuf.
	if body := get(t, c, "http://debug/debug/pprof/profile?seconds=1"); !strings.HasPrefix(body, "\x1f\x8b") {
		t.Fatalf("CPU profile is not gzip: %q", body[:min(len(body), 16)])
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after Shutdown: %v", err)
	}
	// A stale socket (a killed daemon's) does not prevent a restart.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err = Listen(sock)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	s.Shutdown(context.Background())
}

func TestTCP(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if body := get(t, http.DefaultClient, "http://"+s.Addr()+"/debug/pprof/"); !strings.Contains(body, "heap") {
		t.Fatalf("index: %.200s", body)
	}
}

func TestRefusesNonSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(p); err == nil {
		t.Fatal("listened over a regular file")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the file was removed: %v", err)
	}
}
