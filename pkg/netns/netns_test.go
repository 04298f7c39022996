package netns

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestNewDoRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ns1")
	if err := New(p); err != nil {
		t.Fatal(err)
	}
	if !IsPinned(p) {
		t.Fatal("not pinned")
	}
	var names []string
	if err := Do(p, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Fatalf("a new netns should hold only lo, has %v", names)
	}
	if err := New(p); err == nil {
		t.Fatal("a second New on the same path must fail")
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("pin file left")
	}
	if err := Remove(p); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}
