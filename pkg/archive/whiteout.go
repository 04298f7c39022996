//go:build linux

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// OCI layers record deletions with AUFS-style whiteout files. Because a
// layer is applied without its parents there is nothing to delete;
// instead the whiteouts are converted into the form overlayfs reads from
// a lower directory:
//
//   - ".wh.<name>" becomes a character device 0:0 named <name>, which
//     hides <name> of the layers below.
//   - ".wh..wh..opq" in a directory becomes the xattr
//     trusted.overlay.opaque=y on that directory, which hides everything
//     the layers below have in it.
//   - Other ".wh..wh.*" names are AUFS bookkeeping (".wh..wh.plnk",
//     ".wh..wh.aufs") and are skipped.
//
// As the OCI spec requires, whiteouts only affect lower layers: an entry
// of the same layer is never removed by one.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = whiteoutPrefix + whiteoutPrefix
	whiteoutOpaqueDir  = whiteoutMetaPrefix + ".opq"

	overlayOpaqueXattr = "trusted.overlay.opaque"
)

func (a *applier) applyWhiteout(hdr *tar.Header, parent, base string) error {
	if base == whiteoutOpaqueDir {
		// The directory may not have an entry of its own (yet);
		// create it so that the marker has somewhere to go.
		if _, err := a.dirs.get(parent, true); err != nil {
			return err
		}
		return a.setOpaque(parent)
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil
	}
	name := base[len(whiteoutPrefix):]
	switch name {
	case "", ".", "..":
		// ".wh..." would otherwise turn into a node named "..".
		return fmt.Errorf("%w: invalid whiteout name", ErrUnsafePath)
	}
	pfd, err := a.dirs.get(parent, true)
	if err != nil {
		return err
	}
	err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	if errors.Is(err, unix.EEXIST) {
		// Created by this layer, so it must stay, and it already
		// hides whatever the lower layers have under that name;
		// unless it is a directory, which overlayfs would merge with
		// theirs.
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return a.setOpaque(joinPath(parent, name))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create whiteout: %w", err)
	}
	if err := unix.Fchownat(pfd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown whiteout: %w", err)
	}
	return nil
}

// setOpaque marks the directory p (relative to the root) opaque.
func (a *applier) setOpaque(p string) error {
	fd, err := a.dirs.get(p, false)
	if err != nil {
		return err
	}
	if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("set %s: %w", overlayOpaqueXattr, err)
	}
	return nil
}

// isWhiteout reports whether st is an overlayfs whiteout.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}
