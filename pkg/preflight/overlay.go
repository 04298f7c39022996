package preflight

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fsNames names the filesystems a root commonly lives on, for messages.
var fsNames = map[int64]string{
	0xEF53:     "ext4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794c7630: "overlay",
	0x2fc12fc1: "zfs",
	0x6969:     "nfs",
}

func fsName(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown filesystem"
	}
	if n, ok := fsNames[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("filesystem type 0x%x", st.Type)
}

// checkOverlay mounts a real overlay in a temporary directory under root,
// the way the snapshotter mounts a container's rootfs (two lowers, an
// upper, index=off), then writes through it and deletes a lower file. That
// exercises what listing /proc/filesystems cannot: whether the root's
// filesystem can be an upper layer (d_type, xattrs, not itself overlayfs)
// and whether whiteouts can be created there.
func checkOverlay(o *Options) Result {
	const check = "overlayfs"
	if os.Geteuid() != 0 {
		return warn(check, "run cri-rt check as root", "not root: cannot try an overlay mount")
	}
	base := existingAncestor(o.Config.Root)
	tmp, err := os.MkdirTemp(base, ".cri-rt-check-overlay-")
	if err != nil {
		return fail(check, "make "+base+" writable", "creating a test directory under %s: %v", base, err)
	}
	defer os.RemoveAll(tmp)
	d := func(n string) string { return filepath.Join(tmp, n) }
	for _, n := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(d(n), 0o755); err != nil {
			return fail(check, "", "%v", err)
		}
	}
	if err := errors.Join(
		os.WriteFile(d("l1/top"), []byte("l1"), 0o644),
		os.WriteFile(d("l2/top"), []byte("l2"), 0o644),
		os.WriteFile(d("l2/gone"), []byte("x"), 0o644),
	); err != nil {
		return fail(check, "", "%v", err)
	}
	fs := fsName(base)
	opts := fmt.Sprintf("index=off,lowerdir=%s:%s,upperdir=%s,workdir=%s", d("l1"), d("l2"), d("upper"), d("work"))
	if err := unix.Mount("overlay", d("merged"), "overlay", 0, opts); err != nil {
		if !filesystems("overlay") {
			return fail(check, "modprobe overlay (and add it to /etc/modules-load.d/)", "the kernel has no overlay filesystem: %v", err)
		}
		return fail(check, "put root on ext4 or xfs (ftype=1); overlayfs cannot use "+fs+" as an upper layer",
			"mounting an overlay on %s (%s) failed: %v", base, fs, err)
	}
	unmounted := false
	defer func() {
		if !unmounted {
			_ = unix.Unmount(d("merged"), unix.MNT_DETACH)
		}
	}()
	if b, err := os.ReadFile(d("merged/top")); err != nil || !bytes.Equal(b, []byte("l1")) {
		return fail(check, "", "overlay on %s: the first lower does not win: read %q, %v", fs, b, err)
	}
	if err := os.WriteFile(d("merged/new"), []byte("new"), 0o644); err != nil {
		return fail(check, "", "overlay on %s: writing through the mount: %v", fs, err)
	}
	if err := os.Remove(d("merged/gone")); err != nil {
		return fail(check, "", "overlay on %s: deleting a lower file (whiteout): %v", fs, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(d("upper/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		return fail(check, "", "overlay on %s: no whiteout in the upper layer after a delete (%v)", fs, err)
	}
	if err := unix.Unmount(d("merged"), 0); err != nil {
		return fail(check, "", "unmounting the test overlay: %v", err)
	}
	unmounted = true
	return ok(check, "overlay mounts on %s (%s): two lowers, writes and whiteouts work", base, fs)
}
