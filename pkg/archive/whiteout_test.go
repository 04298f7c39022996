//go:build linux

package archive

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestApplyLayerWhiteouts(t *testing.T) {
	requireRoot(t)
	opq := reg("d/.wh..wh..opq", "")
	gone := withOwner(reg(".wh.gone", ""), 12, 34)
	overlayXattr := withXattr(dirEntry("x/"), "trusted.overlay.redirect", "/etc")
	dir, _ := apply(t, mkTar(t,
		gone,
		dirEntry("a/"),
		reg("a/.wh.file", ""),
		opq, // "d/" has no entry of its own
		reg("d/new", "new"),
		reg(".wh..wh.plnk", ""),
		reg("a/.wh..wh.aufs", ""),
		// Same-layer entries are not removed by whiteouts.
		reg("kept", "k"),
		reg(".wh.kept", ""),
		dirEntry("keptdir/"),
		reg("keptdir/f", "f"),
		reg(".wh.keptdir", ""),
		// Delete-then-recreate in one layer makes an opaque directory.
		reg(".wh.recreated", ""),
		dirEntry("recreated/"),
		// overlayfs xattrs in the tar itself are dropped.
		overlayXattr,
	))

	for name, owner := range map[string][2]uint32{"gone": {12, 34}, "a/file": {0, 0}} {
		st := lstat(t, filepath.Join(dir, name))
		if !isWhiteout(st) || st.Uid != owner[0] || st.Gid != owner[1] {
			t.Errorf("%s: mode %o rdev %d uid %d gid %d, want a 0:0 char device owned by %v",
				name, st.Mode, st.Rdev, st.Uid, st.Gid, owner)
		}
	}
	for _, name := range []string{".wh.gone", "a/.wh.file", "d/.wh..wh..opq", ".wh..wh.plnk", "a/.wh..wh.aufs"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s exists", name)
		}
	}
	for name, want := range map[string]bool{"d": true, "a": false, "keptdir": true, "recreated": true, "x": false, ".": false} {
		v, ok := lgetxattr(t, filepath.Join(dir, name), overlayOpaqueXattr)
		if got := ok && v == "y"; got != want {
			t.Errorf("%s: opaque %v, want %v", name, got, want)
		}
	}
	if _, ok := lgetxattr(t, filepath.Join(dir, "x"), "trusted.overlay.redirect"); ok {
		t.Error("trusted.overlay.redirect from the tar was applied")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(b) != "k" {
		t.Errorf("kept = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keptdir/f")); err != nil || string(b) != "f" {
		t.Errorf("keptdir/f = %q, %v", b, err)
	}
	if st := lstat(t, filepath.Join(dir, "recreated")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("recreated: mode %o", st.Mode)
	}
}

// TestOverlayMount mounts two applied layers to check that overlayfs
// reads the converted whiteouts as intended.
func TestOverlayMount(t *testing.T) {
	requireRoot(t)
	lower, _ := apply(t, mkTar(t,
		reg("gone", "lower"),
		dirEntry("a/"),
		reg("a/hidden", "lower"),
		reg("a/visible", "lower"),
		dirEntry("opq/"),
		reg("opq/hidden", "lower"),
		dirEntry("merged/"),
		reg("merged/lower", "lower"),
	))
	upper, _ := apply(t, mkTar(t,
		reg(".wh.gone", ""),
		dirEntry("a/"),
		reg("a/.wh.hidden", ""),
		dirEntry("opq/"),
		reg("opq/.wh..wh..opq", ""),
		reg("opq/new", "upper"),
		dirEntry("merged/"),
		reg("merged/upper", "upper"),
	))
	mnt := t.TempDir()
	// Only lower directories: a read-only mount, as for an image's rootfs
	// below the container's writable layer.
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+upper+":"+lower); err != nil {
		t.Skipf("cannot mount overlayfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})

	for name, want := range map[string]bool{
		"gone":         false,
		"a/hidden":     false,
		"a/visible":    true,
		"opq/hidden":   false,
		"opq/new":      true,
		"merged/lower": true,
		"merged/upper": true,
	} {
		_, err := os.Lstat(filepath.Join(mnt, name))
		if got := err == nil; got != want {
			t.Errorf("%s: exists %v, want %v (%v)", name, got, want, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(mnt, "opq"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "new" {
		t.Errorf("opq lists %v, %v; want only new", entries, err)
	}
}
