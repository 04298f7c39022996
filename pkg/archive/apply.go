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
//
// # Fidelity
//
// Regular files, directories, symlinks, hardlinks (to earlier entries of
// the same layer), device nodes and fifos are created with the numeric
// owner, mode (including setuid, setgid and sticky bits), xattrs from PAX
// SCHILY.xattr.* records and atime/mtime of their headers; directory times
// are set last, since creating entries in a directory changes its mtime.
// A later entry with the same name as an earlier one replaces it, except
// that directories are merged. Xattrs named trusted.overlay.* or
// user.overlay.* are dropped, since overlayfs would interpret them; a
// security.* xattr the host refuses (LSM policy, invalid value) is
// skipped; any other failure to set an xattr is an error.
//
// # Performance
//
// Decompression and hashing run in a goroutine of their own, feeding the
// goroutine that writes files through a ring of 1 MiB buffers, so a layer
// uses two cores. File data is written with 1 MiB writes and nothing is
// fsynced; directories are opened once and then used for *at syscalls.
package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	dec, kind, err := decompress(br)
	if err != nil {
		return Result{}, fmt.Errorf("archive: %w", err)
	}
	defer dec.Close()
	s := newStream(ctx, dec, br, kind)
	defer s.stop() // runs before dec.Close: the producer uses dec

	if err := a.applyTar(tar.NewReader(s)); err != nil {
		return Result{}, err
	}
	// The tar reader stops at the end-of-archive marker; read the rest
	// (more zero blocks, padding) so that the DiffID covers it, the gzip
	// checksum gets verified and the source is at EOF.
	if err := s.drain(); err != nil {
		return Result{}, fmt.Errorf("archive: %w", err)
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
