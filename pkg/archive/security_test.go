//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sandbox is a temp dir with an empty layer directory and, next to it, an
// "outside" directory holding a victim file that no layer may touch.
type sandbox struct {
	base, dir, outside, victim string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	s := sandbox{
		base:    base,
		dir:     filepath.Join(base, "layer"),
		outside: filepath.Join(base, "outside"),
		victim:  filepath.Join(base, "outside", "victim"),
	}
	for _, d := range []string{s.dir, s.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.victim, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// strayFiles are host paths that malicious test layers try to create.
var strayFiles = []string{"/etc/cri-rt-archive-test", "/tmp/cri-rt-archive-test", "/abs"}

// hostFiles are what malicious layers aim at outside the sandbox. (Not
// /etc or /tmp themselves: other tests legitimately change their mtimes.)
var hostFiles = []string{"/etc/passwd", "/etc/shadow", "/etc/hosts"}

// state describes everything in the sandbox except the layer directory,
// and the host files.
func (s sandbox) state(t testing.TB) []string {
	t.Helper()
	state := snapshot(t, s.base, s.dir)
	for _, p := range hostFiles {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		state = append(state, fmt.Sprintf("%s mode=%o uid=%d nlink=%d size=%d mtime=%d ctime=%d",
			p, st.Mode, st.Uid, st.Nlink, st.Size, st.Mtim.Nano(), st.Ctim.Nano()))
	}
	return state
}

// apply applies layer in s and checks that nothing outside the
// layer directory changed.
func (s sandbox) apply(t *testing.T, layer []byte) error {
	t.Helper()
	before := s.state(t)
	_, err := ApplyLayer(context.Background(), s.dir, bytes.NewReader(layer))
	after := s.state(t)
	if !slices.Equal(before, after) {
		t.Errorf("outside of the layer directory changed:\nbefore:\n  %s\nafter:\n  %s",
			strings.Join(before, "\n  "), strings.Join(after, "\n  "))
	}
	for _, p := range strayFiles {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created", p)
			os.RemoveAll(p)
		}
	}
	return err
}

func withXattr(e tarEntry, key, value string) tarEntry {
	e.PAXRecords = map[string]string{"SCHILY.xattr." + key: value}
	return e
}

func withOwner(e tarEntry, uid, gid int) tarEntry {
	e.Uid, e.Gid = uid, gid
	return e
}

// TestApplyLayerRejectsUnsafe checks layers that try to write outside
// the layer directory: each must fail, naming the entry, with nothing
// changed outside.
func TestApplyLayerRejectsUnsafe(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name    string
		entries func(s sandbox) []tarEntry // the last one is the bad one
	}{
		{"dotdot", func(s sandbox) []tarEntry {
			return []tarEntry{reg("../escape", "x")}
		}},
		{"dotdot into outside", func(s sandbox) []tarEntry {
			return []tarEntry{reg("../outside/victim", "pwned")}
		}},
		{"nested dotdot", func(s sandbox) []tarEntry {
			return []tarEntry{dirEntry("a/"), reg("a/../../escape", "x")}
		}},
		{"dotdot dir", func(s sandbox) []tarEntry {
			return []tarEntry{dirEntry("../escape-dir/")}
		}},
		{"absolute", func(s sandbox) []tarEntry {
			return []tarEntry{reg("/abs", "x")}
		}},
		{"absolute into outside", func(s sandbox) []tarEntry {
			return []tarEntry{reg(s.victim, "pwned")}
		}},
		{"absolute etc", func(s sandbox) []tarEntry {
			return []tarEntry{reg("/etc/cri-rt-archive-test", "x")}
		}},
		{"symlink to parent", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", ".."), reg("sym/x", "x")}
		}},
		{"symlink to outside", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), reg("sym/victim", "pwned")}
		}},
		{"relative symlink to outside", func(s sandbox) []tarEntry {
			return []tarEntry{dirEntry("a/"), symlinkEntry("a/sym", "../../outside"), reg("a/sym/new", "x")}
		}},
		{"symlink to etc", func(s sandbox) []tarEntry {
			// Aims at a file that does not exist: should this ever
			// break, the test must not clobber the host's passwd.
			return []tarEntry{symlinkEntry("etc", "/etc"), reg("etc/cri-rt-archive-test", "x")}
		}},
		{"symlink to tmp", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("tmp", "/tmp"), reg("tmp/cri-rt-archive-test", "x")}
		}},
		{"symlink chain", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("b", s.outside), symlinkEntry("a", "b"), reg("a/x", "x")}
		}},
		{"symlink inside the layer", func(s sandbox) []tarEntry {
			return []tarEntry{dirEntry("real/"), symlinkEntry("sym", "real"), reg("sym/x", "x")}
		}},
		{"mkdir through symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), dirEntry("sym/sub/")}
		}},
		{"device through symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), nodeEntry(tar.TypeChar, "sym/null", 0o666, 1, 3)}
		}},
		{"symlink through symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), symlinkEntry("sym/evil", "/")}
		}},
		{"hardlink escaping", func(s sandbox) []tarEntry {
			return []tarEntry{hardlinkEntry("h", "../outside/victim")}
		}},
		{"hardlink absolute", func(s sandbox) []tarEntry {
			return []tarEntry{hardlinkEntry("h", s.victim)}
		}},
		{"hardlink to etc", func(s sandbox) []tarEntry {
			return []tarEntry{hardlinkEntry("passwd", "/etc/passwd")}
		}},
		{"hardlink through symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), hardlinkEntry("h", "sym/victim")}
		}},
		{"hardlink through dotdot symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", "../outside"), hardlinkEntry("h", "sym/victim")}
		}},
		{"whiteout through symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), reg("sym/.wh.victim", "")}
		}},
		{"opaque through symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("sym", s.outside), reg("sym/.wh..wh..opq", "")}
		}},
		{"whiteout dotdot", func(s sandbox) []tarEntry {
			return []tarEntry{dirEntry("a/"), reg("a/.wh...", "")}
		}},
		{"whiteout dot", func(s sandbox) []tarEntry {
			return []tarEntry{reg(".wh..", "")}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			entries := c.entries(s)
			err := s.apply(t, mkTar(t, entries...))
			if err == nil {
				t.Fatal("ApplyLayer succeeded")
			}
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("error %q does not wrap ErrUnsafePath", err)
			}
			if name := entries[len(entries)-1].Name; !strings.Contains(err.Error(), fmt.Sprintf("entry %q", name)) {
				t.Errorf("error %q does not name entry %q", err, name)
			}
			t.Log(err)
		})
	}
}

// TestApplyLayerContainsSymlinks checks entries that are fine but must
// replace a symlink left by an earlier entry rather than follow it.
func TestApplyLayerContainsSymlinks(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name    string
		entries func(s sandbox) []tarEntry
		check   func(t *testing.T, s sandbox)
	}{
		{"absolute symlink target is kept", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("passwd", "/etc/passwd"), symlinkEntry("up", "../../..")}
		}, func(t *testing.T, s sandbox) {
			if target, _ := os.Readlink(filepath.Join(s.dir, "passwd")); target != "/etc/passwd" {
				t.Errorf("passwd -> %q", target)
			}
			if target, _ := os.Readlink(filepath.Join(s.dir, "up")); target != "../../.." {
				t.Errorf("up -> %q", target)
			}
		}},
		{"file replaces symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("f", s.victim), reg("f", "pwned")}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "f")); st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Errorf("f is not a regular file: %o", st.Mode)
			}
		}},
		{"directory replaces symlink", func(s sandbox) []tarEntry {
			d := dirEntry("d/")
			d.Mode = 0o700
			return []tarEntry{symlinkEntry("d", s.outside), withOwner(d, 1234, 1234), reg("d/victim", "pwned")}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "d")); st.Mode != unix.S_IFDIR|0o700 || st.Uid != 1234 {
				t.Errorf("d: mode %o uid %d", st.Mode, st.Uid)
			}
		}},
		{"node replaces symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("n", s.victim), nodeEntry(tar.TypeFifo, "n", 0o666, 0, 0)}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "n")); st.Mode != unix.S_IFIFO|0o666 {
				t.Errorf("n: mode %o", st.Mode)
			}
		}},
		{"hardlink to symlink links the symlink", func(s sandbox) []tarEntry {
			return []tarEntry{symlinkEntry("s", s.victim), hardlinkEntry("h", "s")}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "h")); st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Nlink != 2 {
				t.Errorf("h: mode %o nlink %d", st.Mode, st.Nlink)
			}
		}},
		{"hardlink replaces symlink", func(s sandbox) []tarEntry {
			return []tarEntry{reg("t", "t"), symlinkEntry("h", s.victim), hardlinkEntry("h", "t")}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "h")); st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 2 {
				t.Errorf("h: mode %o nlink %d", st.Mode, st.Nlink)
			}
		}},
		{"attributes of a symlink stay on it", func(s sandbox) []tarEntry {
			l := withOwner(symlinkEntry("s", s.victim), 4321, 4321)
			return []tarEntry{withXattr(l, "trusted.x", "y")}
		}, func(t *testing.T, s sandbox) {
			p := filepath.Join(s.dir, "s")
			if st := lstat(t, p); st.Uid != 4321 || st.Gid != 4321 {
				t.Errorf("s: uid %d gid %d", st.Uid, st.Gid)
			}
			if v, _ := lgetxattr(t, p, "trusted.x"); v != "y" {
				t.Errorf("s: trusted.x = %q", v)
			}
		}},
		{"whiteout replaces nothing outside", func(s sandbox) []tarEntry {
			return []tarEntry{reg(".wh.victim", ""), reg(".wh.outside", "")}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "victim")); !isWhiteout(st) {
				t.Errorf("victim is not a whiteout: %o", st.Mode)
			}
		}},
		{"hardlink with contained dotdot", func(s sandbox) []tarEntry {
			return []tarEntry{dirEntry("a/"), reg("t", "t"), hardlinkEntry("a/h", "a/../t")}
		}, func(t *testing.T, s sandbox) {
			if st := lstat(t, filepath.Join(s.dir, "a/h")); st.Nlink != 2 {
				t.Errorf("a/h: nlink %d", st.Nlink)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			if err := s.apply(t, mkTar(t, c.entries(s)...)); err != nil {
				t.Fatal(err)
			}
			c.check(t, s)
		})
	}
}
