//go:build linux

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// setAttrs applies owner, mode and xattrs of hdr to an open file or
// directory. The order matters: chown clears the setuid/setgid bits and
// security.capability, so it goes first.
func (a *applier) setAttrs(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// Also needed without special bits: creation modes are subject to
	// the process umask.
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return setXattrs(hdr, func(key string, value []byte) error {
		return unix.Fsetxattr(fd, key, value, 0)
	})
}

// setAttrsAt is setAttrs for entries that cannot be opened (symlinks, and
// device nodes which opening would activate), plus their times. chmod is
// skipped for symlinks, whose mode Linux ignores.
func (a *applier) setAttrsAt(pfd int, base string, hdr *tar.Header, chmod bool) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if chmod {
		// fchmodat follows symlinks, but base is the node just
		// created by mknod and nothing else writes to the layer
		// directory while it is being applied.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if hasXattrs(hdr) {
		set, done, err := setxattrAt(pfd, base)
		if err != nil {
			return fmt.Errorf("setxattr: %w", err)
		}
		err = setXattrs(hdr, set)
		done()
		if err != nil {
			return err
		}
	}
	ts := times(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// setDirTimes sets the times of all directory entries, after everything
// inside them has been written.
func (a *applier) setDirTimes() error {
	// Sorted so that nearby directories share cached parent fds.
	dirs := make([]string, 0, len(a.dirTimes))
	for p := range a.dirTimes {
		dirs = append(dirs, p)
	}
	sort.Strings(dirs)
	for _, p := range dirs {
		a.dirs.trim()
		fd, err := a.dirs.get(p, false)
		if err != nil {
			return fmt.Errorf("archive: directory %q: %w", p, err)
		}
		ts := a.dirTimes[p]
		if err := futimens(fd, &ts); err != nil {
			return fmt.Errorf("archive: directory %q: set times: %w", p, err)
		}
	}
	return nil
}

// times returns the atime and mtime of an entry. Only PAX and GNU headers
// carry an atime; without one, atime is the mtime.
func times(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

// paxSchilyXattr is the PAX record prefix under which GNU tar, bsdtar and
// archive/tar store extended attributes.
const paxSchilyXattr = "SCHILY.xattr."

// skipXattr reports whether an xattr from a layer is dropped.
//
// overlayfs interprets trusted.overlay.* (and user.overlay.* with the
// userxattr mount option) on its layers: opaque, redirect, metacopy and
// more. Taken from a tar they would let a layer reach into other layers
// or redirect lookups; the only overlay xattrs a layer gets are the ones
// converted from OCI whiteouts.
func skipXattr(key string) bool {
	return strings.HasPrefix(key, "trusted.overlay.") || strings.HasPrefix(key, "user.overlay.")
}

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxSchilyXattr) {
			return true
		}
	}
	return false
}

// setXattrs applies the xattrs of hdr with set.
//
// Failures to set security.* attributes are ignored: they are governed by
// the host's security modules rather than by the filesystem (an SELinux
// label the host policy does not know, an IMA/EVM signature, a malformed
// capability set), and the runtime relabels containers anyway. Every
// other failure is an error, since dropping e.g. a user.* or trusted.*
// attribute would silently change the image content.
func setXattrs(hdr *tar.Header, set func(key string, value []byte) error) error {
	for k, v := range hdr.PAXRecords {
		key, ok := strings.CutPrefix(k, paxSchilyXattr)
		if !ok || skipXattr(key) {
			continue
		}
		if err := set(key, []byte(v)); err != nil {
			if strings.HasPrefix(key, "security.") && ignorableSecurityXattrError(err) {
				continue
			}
			return fmt.Errorf("setxattr %s: %w", key, err)
		}
	}
	return nil
}

func ignorableSecurityXattrError(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) ||
		errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL)
}
