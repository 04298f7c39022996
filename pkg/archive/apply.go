//go:build linux

// Package archive unpacks OCI image layers into overlayfs lower
// directories.
//
// A layer is applied on its own into an empty directory, without access to
// its parents, so the layers of an image can be unpacked in parallel and
// while they download. Deletions are therefore not performed but recorded
// in overlayfs' on-disk format (see whiteout.go), and overlayfs combines
// the directories at mount time.
//
// # Security
//
// A layer is untrusted input. No entry can create or modify anything
// outside the target directory: names and hardlink targets that are
// absolute or escape with ".." are rejected, and paths are resolved one
// component at a time relative to directory file descriptors without
// following symlinks, so a path through a symlink (even one created by an
// earlier entry of the same layer) is rejected too. Symlinks themselves
// are created with whatever target the layer says, absolute or not: the
// target is data interpreted inside the container. All such rejections
// wrap ErrUnsafePath and name the offending entry.
//
// ApplyLayer has to run as root (CAP_CHOWN, CAP_MKNOD, CAP_FOWNER,
// CAP_DAC_OVERRIDE, and CAP_SYS_ADMIN for trusted.* xattrs) to reproduce
// owners, device nodes and whiteouts.
package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Result describes an applied layer.
type Result struct {
	// DiffID is the sha256 digest of the uncompressed tar stream, to be
	// verified against the image config's rootfs.diff_ids.
	DiffID digest.Digest
	// Size is the number of uncompressed tar bytes.
	Size int64
}

// copyBufferSize is the largest single write of file data.
const copyBufferSize = 1 << 20

// ApplyLayer reads a (possibly compressed) layer tar from r and writes it
// into dir, which must be an existing, empty directory, in overlayfs
// format. Compression is detected from magic bytes (gzip, zstd, or plain
// tar).
//
// On success r has been read to EOF, including anything after the end of
// the tar archive, so a digest the caller computes over the compressed
// bytes (for instance by tee-ing the download into the content store) is
// complete. The contents are not synced to disk.
//
// On error dir is left partially populated; the caller should remove it.
// Cancelling ctx stops ApplyLayer between reads, but a Read of r that
// blocks has to be unblocked by the caller (an HTTP response body is, when
// the request's context is cancelled): r is never used after ApplyLayer
// returns.
func ApplyLayer(ctx context.Context, dir string, r io.Reader) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	root, err := openRoot(dir)
	if err != nil {
		return Result{}, err
	}
	a := &applier{
		ctx:      ctx,
		dirs:     newDirCache(root),
		buf:      make([]byte, copyBufferSize),
		dirTimes: make(map[string][2]unix.Timespec),
	}
	defer a.dirs.close()

	br := bufio.NewReaderSize(r, sourceBufferSize)
	dec, _, err := decompress(br)
	if err != nil {
		return Result{}, fmt.Errorf("archive: %w", err)
	}
	defer dec.Close()
	s := newStream(ctx, dec, br)
	defer s.stop() // runs before dec.Close: the producer uses dec

	if err := a.applyTar(tar.NewReader(s)); err != nil {
		return Result{}, err
	}
	// The tar reader stops at the end-of-archive marker; read the rest
	// (more zero blocks, padding) so that the DiffID covers it, the gzip
	// checksum gets verified and the source is at EOF.
	if _, err := io.Copy(io.Discard, s); err != nil {
		return Result{}, fmt.Errorf("archive: reading layer: %w", err)
	}
	sum, size := s.result()
	return Result{DiffID: digest.NewDigestFromBytes(digest.SHA256, sum), Size: size}, nil
}

// openRoot opens dir, which the caller controls, and checks that it is
// empty: replacing entries relies on everything present having been
// created by this layer.
func openRoot(dir string) (int, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return -1, fmt.Errorf("archive: open layer directory %s: %w", dir, err)
	}
	var buf [4096]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("archive: read layer directory %s: %w", dir, err)
		}
		if n == 0 {
			return fd, nil
		}
		// ParseDirent leaves out "." and "..".
		if _, _, names := unix.ParseDirent(buf[:n], -1, nil); len(names) > 0 {
			unix.Close(fd)
			return -1, fmt.Errorf("archive: layer directory %s is not empty", dir)
		}
	}
}

// applier holds the state of one ApplyLayer call.
type applier struct {
	ctx  context.Context
	dirs *dirCache
	buf  []byte
	// dirTimes are the times of directory entries, set once all entries
	// are written because creating a child updates the parent's mtime.
	dirTimes map[string][2]unix.Timespec
}

func (a *applier) applyTar(tr *tar.Reader) error {
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("archive: reading layer tar: %w", err)
		}
		a.dirs.trim()
		if err := a.applyEntry(hdr, tr); err != nil {
			return fmt.Errorf("archive: entry %q: %w", hdr.Name, err)
		}
	}
	return a.setDirTimes()
}

func (a *applier) applyEntry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		// Defaults for later headers, already applied by archive/tar.
		return nil
	}
	name, err := cleanPath(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return a.applyRoot(hdr)
	}
	parent, base := splitPath(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.applyWhiteout(hdr, parent, base)
	}
	pfd, err := a.dirs.get(parent, true)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.mkdir(pfd, name, hdr)
	case tar.TypeReg, tar.TypeGNUSparse: // archive/tar turns TypeRegA into TypeReg
		return a.createFile(pfd, name, hdr, r)
	case tar.TypeSymlink:
		return a.symlink(pfd, name, hdr)
	case tar.TypeLink:
		return a.hardlink(pfd, name, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.mknod(pfd, name, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// applyRoot applies a "./" entry to the layer directory itself: overlayfs
// takes the root's owner and mode from the topmost layer.
func (a *applier) applyRoot(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return errors.New("layer root entry is not a directory")
	}
	if err := a.setAttrs(a.dirs.root, hdr); err != nil {
		return err
	}
	a.dirTimes["."] = times(hdr)
	return nil
}

// replace runs create, which makes name in pfd and fails with EEXIST if
// something is in the way; that something is then removed and create
// retried. An existing entry can only come from this layer (the directory
// starts out empty), and a later entry with the same name wins, as with
// tar -x. Creating exclusively, rather than opening what is there, is
// also what keeps a symlink left by an earlier entry from being written
// through.
func (a *applier) replace(pfd int, name string, create func() error) error {
	err := create()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := a.removeAt(pfd, name); err != nil {
		return fmt.Errorf("remove existing entry: %w", err)
	}
	return create()
}

// removeAt removes name (a path relative to the root whose parent is pfd),
// recursively if it is a directory.
func (a *applier) removeAt(pfd int, name string) error {
	_, base := splitPath(name)
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	// Replacing a directory by a non-directory: its cached fds and
	// pending times (and those of everything below) refer to a tree that
	// is about to go away.
	a.dirs.forget(name)
	for p := range a.dirTimes {
		if isAtOrBelow(p, name) {
			delete(a.dirTimes, p)
		}
	}
	return removeAllAt(pfd, base)
}

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
