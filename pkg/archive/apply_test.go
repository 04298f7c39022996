//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, trusted xattrs)")
	}
}

func TestApplyLayerRoundTrip(t *testing.T) {
	requireRoot(t)
	atime := testTime.Add(time.Hour)
	dirTime := time.Date(2019, 1, 2, 3, 4, 5, 6, time.UTC)
	root := dirEntry("./")
	root.Mode = 0o750
	etc := dirEntry("etc/")
	etc.ModTime = dirTime
	etc.AccessTime = dirTime
	conf := reg("etc/conf", "hello world\n")
	conf.Mode = 0o640
	conf.Uid, conf.Gid = 1000, 2000
	conf.AccessTime = atime
	conf.PAXRecords = map[string]string{
		"SCHILY.xattr.user.foo":  "bar",
		"SCHILY.xattr.trusted.t": "\x00\x01binary",
	}
	su := reg("bin/su", "#!/bin/false\n")
	su.Mode = 0o4755
	ping := reg("bin/ping", "ping")
	ping.Mode = 0o2711
	ping.Gid = 42
	tmp := dirEntry("tmp/")
	tmp.Mode = 0o1777
	sh := symlinkEntry("bin/sh", "/bin/busybox")
	sh.Uid, sh.Gid = 5, 6
	sh.ModTime = dirTime
	big := reg("usr/share/big", string(bytes.Repeat([]byte("0123456789abcdef"), 200_000))) // > copy buffer
	layer := mkTar(t,
		root,
		etc, conf,
		dirEntry("bin/"), su, ping, sh,
		hardlinkEntry("bin/su2", "bin/su"),
		tmp,
		dirEntry("dev/"),
		nodeEntry(tar.TypeChar, "dev/null", 0o666, 1, 3),
		nodeEntry(tar.TypeBlock, "dev/loop0", 0o660, 7, 0),
		nodeEntry(tar.TypeFifo, "run/fifo", 0o600, 0, 0), // parent "run" is implicit
		big,
		reg("empty", ""),
	)
	dir, _ := apply(t, layer)

	// Times first: reading files below updates atimes (relatime).
	// With nanoseconds; directories keep theirs although entries
	// were created in them afterwards.
	for _, c := range []struct {
		name         string
		atime, mtime time.Time
	}{
		{"etc", dirTime, dirTime},
		{"etc/conf", atime, testTime},
		{"bin", testTime, testTime},
		{"bin/sh", dirTime, dirTime},
		{"dev", testTime, testTime},
		{"dev/null", testTime, testTime},
		{"run/fifo", testTime, testTime},
		{".", testTime, testTime},
	} {
		st := lstat(t, filepath.Join(dir, c.name))
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(c.mtime) {
			t.Errorf("%s: mtime %v, want %v", c.name, got, c.mtime)
		}
		if got := time.Unix(st.Atim.Unix()); !got.Equal(c.atime) {
			t.Errorf("%s: atime %v, want %v", c.name, got, c.atime)
		}
	}

	// Contents.
	for name, want := range map[string]string{"etc/conf": conf.body, "bin/su": su.body, "usr/share/big": big.body, "empty": ""} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s: content mismatch (%d bytes, want %d)", name, len(got), len(want))
		}
	}

	// Types, modes, owners.
	for _, c := range []struct {
		name     string
		mode     uint32 // including type bits
		uid, gid uint32
		rdev     uint64
	}{
		{".", unix.S_IFDIR | 0o750, 0, 0, 0},
		{"etc", unix.S_IFDIR | 0o755, 0, 0, 0},
		{"etc/conf", unix.S_IFREG | 0o640, 1000, 2000, 0},
		{"bin/su", unix.S_IFREG | 0o4755, 0, 0, 0},
		{"bin/ping", unix.S_IFREG | 0o2711, 0, 42, 0},
		{"bin/sh", unix.S_IFLNK | 0o777, 5, 6, 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0, 0},
		{"dev/null", unix.S_IFCHR | 0o666, 0, 0, unix.Mkdev(1, 3)},
		{"dev/loop0", unix.S_IFBLK | 0o660, 0, 0, unix.Mkdev(7, 0)},
		{"run", unix.S_IFDIR | 0o755, 0, 0, 0},
		{"run/fifo", unix.S_IFIFO | 0o600, 0, 0, 0},
		{"usr/share", unix.S_IFDIR | 0o755, 0, 0, 0},
	} {
		st := lstat(t, filepath.Join(dir, c.name))
		if st.Mode != c.mode || st.Uid != c.uid || st.Gid != c.gid || st.Rdev != c.rdev {
			t.Errorf("%s: mode %o uid %d gid %d rdev %d, want %o %d %d %d",
				c.name, st.Mode, st.Uid, st.Gid, st.Rdev, c.mode, c.uid, c.gid, c.rdev)
		}
	}

	// Symlink target, hardlink.
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	su1, su2 := lstat(t, filepath.Join(dir, "bin/su")), lstat(t, filepath.Join(dir, "bin/su2"))
	if su1.Ino != su2.Ino || su1.Nlink != 2 {
		t.Errorf("bin/su2 is not a hardlink of bin/su (ino %d/%d, nlink %d)", su1.Ino, su2.Ino, su1.Nlink)
	}

	// Xattrs.
	if v, _ := lgetxattr(t, filepath.Join(dir, "etc/conf"), "user.foo"); v != "bar" {
		t.Errorf("user.foo = %q", v)
	}
	if v, _ := lgetxattr(t, filepath.Join(dir, "etc/conf"), "trusted.t"); v != "\x00\x01binary" {
		t.Errorf("trusted.t = %q", v)
	}
}

// countingReader records how far its reader was consumed.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func TestApplyLayerCompression(t *testing.T) {
	requireRoot(t)
	plain := mkTar(t, dirEntry("a/"), reg("a/f", "content"), reg("b", string(make([]byte, 70_000))))
	// Trailing zero blocks beyond the end-of-archive marker are part of
	// the DiffID (the tar reader never reads them).
	padded := append(append([]byte{}, plain...), make([]byte, 10*512)...)
	twoMembers := append(gzipBytes(t, padded[:1000]), gzipBytes(t, padded[1000:])...)

	for _, c := range []struct {
		name  string
		plain []byte
		blob  []byte
	}{
		{"plain", plain, plain},
		{"plain-padded", padded, padded},
		{"gzip", plain, gzipBytes(t, plain)},
		{"gzip-padded", padded, gzipBytes(t, padded)},
		{"gzip-multistream", padded, twoMembers},
		{"zstd", plain, zstdBytes(t, plain)},
		{"zstd-padded", padded, zstdBytes(t, padded)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layer")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			src := &countingReader{r: bytes.NewReader(c.blob)}
			res, err := ApplyLayer(context.Background(), dir, src)
			if err != nil {
				t.Fatal(err)
			}
			want := digest.FromBytes(c.plain)
			if res.DiffID != want || res.Size != int64(len(c.plain)) {
				t.Errorf("got %s (%d bytes), want %s (%d bytes)", res.DiffID, res.Size, want, len(c.plain))
			}
			if src.n != int64(len(c.blob)) || !src.eof {
				t.Errorf("source read %d of %d bytes (eof %v)", src.n, len(c.blob), src.eof)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "a/f")); err != nil || string(b) != "content" {
				t.Errorf("a/f = %q, %v", b, err)
			}
		})
	}
}

func TestApplyLayerEmpty(t *testing.T) {
	for name, blob := range map[string][]byte{"no bytes": nil, "end marker": mkTar(t)} {
		t.Run(name, func(t *testing.T) {
			dir, res := apply(t, blob)
			sum := sha256.Sum256(blob)
			if res.DiffID != digest.NewDigestFromBytes(digest.SHA256, sum[:]) {
				t.Errorf("DiffID %s", res.DiffID)
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("layer dir has %d entries", len(names))
			}
		})
	}
}

func TestApplyLayerDuplicates(t *testing.T) {
	requireRoot(t)
	d2 := dirEntry("keep/")
	d2.Mode = 0o700
	d2.Uid = 7
	dir, _ := apply(t, mkTar(t,
		reg("f", "first"),
		reg("f", "second"),
		reg("file-then-dir", "x"),
		dirEntry("file-then-dir/"),
		dirEntry("dir-then-file/"),
		reg("dir-then-file/child", "c"),
		dirEntry("dir-then-file/sub/"),
		reg("dir-then-file", "now a file"),
		dirEntry("keep/"),
		reg("keep/child", "c"),
		d2,
		reg("target", "t"),
		reg("link", "replaced by a hardlink"),
		hardlinkEntry("link", "target"),
		hardlinkEntry("target", "target"), // self link: no-op
	))
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("f"); got != "second" {
		t.Errorf("f = %q", got)
	}
	if st := lstat(t, filepath.Join(dir, "file-then-dir")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("file-then-dir is not a directory")
	}
	if got := read("dir-then-file"); got != "now a file" {
		t.Errorf("dir-then-file = %q", got)
	}
	if got := read("keep/child"); got != "c" {
		t.Errorf("keep/child = %q", got)
	}
	if st := lstat(t, filepath.Join(dir, "keep")); st.Mode != unix.S_IFDIR|0o700 || st.Uid != 7 {
		t.Errorf("keep: mode %o uid %d, want second entry's attributes", st.Mode, st.Uid)
	}
	if got := read("link"); got != "t" {
		t.Errorf("link = %q", got)
	}
	if st := lstat(t, filepath.Join(dir, "target")); st.Nlink != 2 {
		t.Errorf("target nlink %d", st.Nlink)
	}
}

func TestApplyLayerErrors(t *testing.T) {
	requireRoot(t)
	plain := mkTar(t, reg("a", string(bytes.Repeat([]byte("abcdefgh"), 100_000))), reg("b", "b"))
	gz := gzipBytes(t, plain)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)/2] ^= 0xff
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-6] ^= 0xff
	zst := zstdBytes(t, plain)

	for _, c := range []struct {
		name string
		blob []byte
		is   error
	}{
		{"truncated gzip", gz[:len(gz)/2], nil},
		{"truncated gzip trailer", gz[:len(gz)-4], nil},
		{"corrupt gzip", corrupt, nil},
		{"gzip checksum", badCRC, nil},
		{"truncated zstd", zst[:len(zst)/2], nil},
		{"truncated tar", plain[:len(plain)/2], nil},
		{"bzip2", []byte("BZh91AY&SY garbage"), ErrUnsupportedCompression},
		{"xz", []byte("\xfd7zXZ\x00 garbage"), ErrUnsupportedCompression},
		{"garbage", bytes.Repeat([]byte("not a tar"), 200), nil},
		{"unsupported type", mkTar(t, tarEntry{Header: tar.Header{Typeflag: 'Z', Name: "x"}}), nil},
		{"hardlink to missing", mkTar(t, hardlinkEntry("l", "missing")), nil},
		{"file below file", mkTar(t, reg("f", ""), reg("f/g", "")), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layer")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := ApplyLayer(context.Background(), dir, bytes.NewReader(c.blob))
			if err == nil {
				t.Fatal("ApplyLayer succeeded")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v, want %v", err, c.is)
			}
			t.Log(err)
		})
	}

	t.Run("dir not empty", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ApplyLayer(context.Background(), dir, bytes.NewReader(plain)); err == nil {
			t.Fatal("ApplyLayer into a non-empty directory succeeded")
		}
	})
	t.Run("dir missing", func(t *testing.T) {
		if _, err := ApplyLayer(context.Background(), filepath.Join(t.TempDir(), "nope"), bytes.NewReader(plain)); err == nil {
			t.Fatal("ApplyLayer into a missing directory succeeded")
		}
	})
}

func TestApplyLayerContextCancel(t *testing.T) {
	requireRoot(t)
	var entries []tarEntry
	for i := range 200 {
		entries = append(entries, reg("f"+string(rune('a'+i%26))+time.Duration(i).String(), string(make([]byte, 100_000))))
	}
	layer := gzipBytes(t, mkTar(t, entries...))

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ApplyLayer(ctx, t.TempDir(), bytes.NewReader(layer))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})

	t.Run("while reading", func(t *testing.T) {
		// The source stalls half way, like a slow download, and (like
		// an HTTP body of a request with ctx) fails once ctx is done.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		go func() {
			pw.Write(layer[:len(layer)/2])
			<-ctx.Done()
			pw.CloseWithError(ctx.Err())
		}()
		errc := make(chan error, 1)
		go func() {
			_, err := ApplyLayer(ctx, t.TempDir(), pr)
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ApplyLayer did not return after cancel")
		}
	})

	t.Run("while writing", func(t *testing.T) {
		// A source that never blocks: ApplyLayer itself must notice.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src := &cancelAfter{r: bytes.NewReader(layer), n: int64(len(layer) / 4), cancel: cancel}
		_, err := ApplyLayer(ctx, t.TempDir(), src)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}

// cancelAfter cancels a context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestDetectCompression(t *testing.T) {
	plain := mkTar(t, reg("f", "x"))
	for _, c := range []struct {
		blob []byte
		want Compression
	}{
		{plain, Uncompressed},
		{nil, Uncompressed},
		{gzipBytes(t, plain), Gzip},
		{zstdBytes(t, plain), Zstd},
	} {
		if got := DetectCompression(c.blob); got != c.want {
			t.Errorf("DetectCompression = %v, want %v", got, c.want)
		}
		rc, got, err := Decompress(bytes.NewReader(c.blob))
		if err != nil || got != c.want {
			t.Fatalf("Decompress: %v, %v; want %v", got, err, c.want)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || (c.blob != nil && !bytes.Equal(b, plain)) {
			t.Errorf("Decompress %v: %d bytes, %v", c.want, len(b), err)
		}
	}
}

func TestApplyLayerXattrPolicy(t *testing.T) {
	requireRoot(t)
	// A VFS_CAP_REVISION_2 set granting CAP_NET_RAW, effective.
	netRaw := string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	ping := withOwner(reg("ping", "elf"), 1000, 1000)
	ping.Mode = 0o4755
	ping.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": netRaw}
	bogus := withXattr(reg("bogus", ""), "security.capability", "not a capability set")
	dir, _ := apply(t, mkTar(t, ping, bogus))

	// chown drops file capabilities and setuid, so both must be set
	// after it.
	st := lstat(t, filepath.Join(dir, "ping"))
	if st.Uid != 1000 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("ping: uid %d mode %o", st.Uid, st.Mode)
	}
	if v, ok := lgetxattr(t, filepath.Join(dir, "ping"), "security.capability"); !ok || v != netRaw {
		t.Errorf("ping: security.capability %q, %v", v, ok)
	}
	// An invalid security.* value is skipped, not fatal.
	if _, ok := lgetxattr(t, filepath.Join(dir, "bogus"), "security.capability"); ok {
		t.Error("bogus capability was set")
	}

	// Other namespaces are not skipped: user.* xattrs are not allowed on
	// symlinks, so this layer fails.
	dir = filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := ApplyLayer(context.Background(), dir, bytes.NewReader(mkTar(t,
		withXattr(symlinkEntry("s", "x"), "user.foo", "bar"))))
	if err == nil {
		t.Error("failing user.* xattr was ignored")
	}
}

// TestApplyLayerManyDirs uses more directories than the fd cache holds.
func TestApplyLayerManyDirs(t *testing.T) {
	requireRoot(t)
	var entries []tarEntry
	for i := range 3 * maxCachedDirs {
		d := dirEntry(fmt.Sprintf("d%d/", i%7))
		sub := dirEntry(fmt.Sprintf("d%d/s%d/", i%7, i))
		sub.ModTime = testTime.Add(time.Duration(i) * time.Second)
		entries = append(entries, d, sub, reg(fmt.Sprintf("d%d/s%d/f", i%7, i), "x"))
	}
	// Revisit early directories after the cache was trimmed.
	entries = append(entries, reg("d0/s0/g", "y"))
	dir, _ := apply(t, mkTar(t, entries...))
	for i := range 3 * maxCachedDirs {
		p := filepath.Join(dir, fmt.Sprintf("d%d/s%d", i%7, i))
		want := testTime.Add(time.Duration(i) * time.Second)
		if got := time.Unix(lstat(t, p).Mtim.Unix()); !got.Equal(want) {
			t.Fatalf("%s: mtime %v, want %v", p, got, want)
		}
	}
}
