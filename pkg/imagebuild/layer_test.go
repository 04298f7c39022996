package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTar returns the headers and bodies of a built blob, in archive order.
func readTar(t *testing.T, b *Blob) ([]*tar.Header, map[string]string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b.Compressed))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var hdrs []*tar.Header
	bodies := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
		bodies[h.Name] = string(body)
	}
	return hdrs, bodies
}

func sampleEntries(t *testing.T) []Entry {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("from host"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []Entry{
		File("/bin/prog", 0o755, []byte("#!prog")),
		Hardlink("/bin/alias", "/bin/prog"),
		Hardlink("/bin/alias2", "bin/alias"), // chains resolve to the file
		Symlink("/usr/bin/prog", "../../bin/prog"),
		Dir("/tmp", 0o777|fs.ModeSticky),
		File("/usr/local/bin/suid", 0o755|fs.ModeSetuid|fs.ModeSetgid, []byte("x")),
		HostFile("etc/copied", 0o640, src).Owned(1000, 50000),
		File("/empty", 0, nil),
	}
}

func TestLayerDeterministicAndOrderIndependent(t *testing.T) {
	es := sampleEntries(t)
	a, err := (&Layer{Name: "a", Entries: es}).Build()
	if err != nil {
		t.Fatal(err)
	}
	rev := make([]Entry, len(es))
	for i := range es {
		rev[len(es)-1-i] = es[i]
	}
	b, err := (&Layer{Name: "b", Entries: rev}).Build()
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest || a.DiffID != b.DiffID {
		t.Fatalf("digests differ: %v/%v vs %v/%v", a.Digest, a.DiffID, b.Digest, b.DiffID)
	}
	c, err := (&Layer{Entries: append(es[:len(es):len(es)], File("/other", 0, nil))}).Build()
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest == a.Digest {
		t.Fatal("different content gave the same digest")
	}
}

func TestLayerTarContent(t *testing.T) {
	blob, err := (&Layer{Entries: sampleEntries(t)}).Build()
	if err != nil {
		t.Fatal(err)
	}
	hdrs, bodies := readTar(t, blob)
	var names []string
	pos := map[string]int{}
	for i, h := range hdrs {
		names = append(names, h.Name)
		pos[h.Name] = i
		if !h.ModTime.Equal(Epoch) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: leaked metadata mtime=%v uname=%q gname=%q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
	want := "bin/ bin/prog empty etc/ etc/copied tmp/ usr/ usr/bin/ usr/bin/prog usr/local/ usr/local/bin/ usr/local/bin/suid bin/alias bin/alias2"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("archive order:\n got %s\nwant %s", got, want)
	}
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
	}
	checks := []struct {
		name       string
		typ        byte
		mode       int64
		uid, gid   int
		link, body string
	}{
		{"bin/", tar.TypeDir, 0o755, 0, 0, "", ""},
		{"bin/prog", tar.TypeReg, 0o755, 0, 0, "", "#!prog"},
		{"bin/alias", tar.TypeLink, 0o755, 0, 0, "bin/prog", ""},
		{"bin/alias2", tar.TypeLink, 0o755, 0, 0, "bin/prog", ""},
		{"usr/bin/prog", tar.TypeSymlink, 0o777, 0, 0, "../../bin/prog", ""},
		{"tmp/", tar.TypeDir, 0o1777, 0, 0, "", ""},
		{"usr/local/bin/suid", tar.TypeReg, 0o6755, 0, 0, "", "x"},
		{"etc/copied", tar.TypeReg, 0o640, 1000, 50000, "", "from host"},
		{"empty", tar.TypeReg, 0o644, 0, 0, "", ""},
	}
	for _, c := range checks {
		h := byName[c.name]
		if h == nil {
			t.Errorf("%s missing", c.name)
			continue
		}
		if h.Typeflag != c.typ || h.Mode != c.mode || h.Uid != c.uid || h.Gid != c.gid || h.Linkname != c.link || bodies[c.name] != c.body {
			t.Errorf("%s: got type=%c mode=%o uid=%d gid=%d link=%q body=%q", c.name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, bodies[c.name])
		}
	}
}

func TestLayerErrors(t *testing.T) {
	cases := map[string][]Entry{
		"duplicate":       {File("/a", 0, nil), File("a", 0, nil)},
		"root":            {Dir("/", 0)},
		"dotdot root":     {File("/../", 0, nil)},
		"missing target":  {Hardlink("/a", "/b")},
		"dir target":      {Dir("/d", 0), Hardlink("/a", "/d")},
		"file as parent":  {File("/a", 0, nil), File("/a/b", 0, nil)},
		"missing source":  {HostFile("/a", 0, "/nonexistent/file")},
		"hard link loop":  {Hardlink("/a", "/b"), Hardlink("/b", "/a")},
		"backslash in it": {File(`/a\b`, 0, nil)},
	}
	for name, es := range cases {
		if _, err := (&Layer{Name: name, Entries: es}).Build(); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}

func TestCleanPathKeepsInsideRoot(t *testing.T) {
	p, err := cleanPath("/../../etc/passwd")
	if err != nil || p != "etc/passwd" {
		t.Fatalf("got %q, %v", p, err)
	}
}
