//go:build linux

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// mkdir creates the directory entry name (a cleaned path whose parent is
// pfd). Its times are set at the end, see setDirTimes.
func (a *applier) mkdir(pfd int, name string, hdr *tar.Header) error {
	_, base := splitPath(name)
	err := unix.Mkdirat(pfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		// An existing directory is kept and merged into, as tar -x
		// does; anything else is replaced.
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil
		} else {
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return fmt.Errorf("remove existing entry: %w", err)
			}
			err = unix.Mkdirat(pfd, base, 0o700)
			if err == nil && isWhiteout(&st) {
				// The layer deleted the lower layers' entry and
				// then created a directory in its place: nothing
				// from below may show through.
				err = a.setOpaque(name)
			}
		}
	}
	if err != nil {
		return err
	}
	fd, err := a.dirs.get(name, false)
	if err != nil {
		return err
	}
	if err := a.setAttrs(fd, hdr); err != nil {
		return err
	}
	a.dirTimes[name] = times(hdr)
	return nil
}

// createFile creates the regular file name and writes its content from r.
func (a *applier) createFile(pfd int, name string, hdr *tar.Header, r io.Reader) (retErr error) {
	_, base := splitPath(name)
	fd := -1
	err := a.replace(pfd, name, func() (err error) {
		fd, err = ignoringEINTR(func() (int, error) {
			return unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		})
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := unix.Close(fd); err != nil && retErr == nil {
			retErr = err
		}
	}()
	if err := a.copyData(fd, r, hdr.Size); err != nil {
		return err
	}
	if err := a.setAttrs(fd, hdr); err != nil {
		return err
	}
	ts := times(hdr)
	return futimens(fd, &ts)
}

// copyData copies size bytes of file content from r to fd. The buffer is
// large so that most files take one read and one write; there is no
// fsync, durability is the caller's business (overlay snapshots are
// usually re-pulled after a crash).
func (a *applier) copyData(fd int, r io.Reader, size int64) error {
	for size > 0 {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, a.buf[:min(size, int64(len(a.buf)))])
		if err != nil {
			return fmt.Errorf("reading file data: %w", err)
		}
		if err := writeAll(fd, a.buf[:n]); err != nil {
			return fmt.Errorf("writing file data: %w", err)
		}
		size -= int64(n)
	}
	return nil
}

// symlink creates the symlink name.
func (a *applier) symlink(pfd int, name string, hdr *tar.Header) error {
	_, base := splitPath(name)
	// The target is stored verbatim, absolute or "../../..": it is only
	// ever resolved inside the container's mount namespace, never by
	// ApplyLayer (see dirCache).
	err := a.replace(pfd, name, func() error {
		return unix.Symlinkat(hdr.Linkname, pfd, base)
	})
	if err != nil {
		return err
	}
	return a.setAttrsAt(pfd, base, hdr, false)
}

// hardlink links name to an earlier entry of the layer.
func (a *applier) hardlink(pfd int, name string, hdr *tar.Header) error {
	_, base := splitPath(name)
	// Hardlink targets are archive paths, relative to the layer root.
	// The target must already exist in this layer: layers are unpacked
	// without their parents, and linking to anything outside the layer
	// directory would expose (and let later writes modify) host files.
	target, err := cleanPath(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == name {
		return nil // linking a file to itself changes nothing
	}
	if target == "." {
		return errors.New("hardlink to the layer root")
	}
	tparent, tbase := splitPath(target)
	return a.replace(pfd, name, func() error {
		// Resolved inside the closure: removing an existing
		// directory in replace may have invalidated the fd.
		tfd, err := a.dirs.get(tparent, false)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		// No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink
		// itself, as in tar, and never its (possibly outside) target.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return err
			}
			return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
		}
		return nil
	})
}

// mknod creates a device node or fifo.
func (a *applier) mknod(pfd int, name string, hdr *tar.Header) error {
	_, base := splitPath(name)
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	err := a.replace(pfd, name, func() error {
		return unix.Mknodat(pfd, base, mode, int(dev))
	})
	if err != nil {
		return err
	}
	return a.setAttrsAt(pfd, base, hdr, true)
}
