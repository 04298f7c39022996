//go:build linux

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

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
