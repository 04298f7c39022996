//go:build linux

package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnsafePath is wrapped by the error ApplyLayer returns for an entry
// that could create or modify something outside the layer directory: an
// absolute or escaping name or hardlink target, or a path that goes
// through a symlink.
var ErrUnsafePath = errors.New("unsafe path")

// cleanPath validates a tar entry name (or hardlink target) and returns it
// cleaned and relative to the layer root ("." for the root itself).
//
// Absolute and escaping names are rejected rather than re-rooted (as tar
// -x and containerd do): image builders never produce them, so they only
// show up in crafted layers, and failing loudly beats silently writing
// the content somewhere other than where the author said. Non-escaping
// ".." ("a/../b") is resolved lexically, which matches what the kernel
// does here because no path component is ever a symlink (see dirCache).
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty name")
	}
	if path.IsAbs(p) {
		return "", fmt.Errorf("%w: absolute name", ErrUnsafePath)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: escapes the layer root", ErrUnsafePath)
	}
	return c, nil
}

// splitPath splits a cleaned relative path into its parent ("." at the
// top) and final component.
func splitPath(p string) (parent, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ".", p
	}
	return p[:i], p[i+1:]
}

// joinPath joins a cleaned relative directory and a name in it.
func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// maxCachedDirs bounds the number of directory fds kept open.
const maxCachedDirs = 128

// dirCache resolves directories of the layer to open file descriptors.
//
// This is what keeps writes inside the layer: every directory is opened
// one component at a time with openat(O_NOFOLLOW|O_DIRECTORY) relative to
// its already-resolved parent, so a symlink anywhere in a path (one that
// an earlier entry created, pointing to /etc or "..") makes the lookup
// fail instead of being followed, and every file is then created with an
// *at syscall on the final component only, again without following it.
// Nothing is ever resolved through a full path string.
//
// Symlinks inside the layer are refused even when they point back into
// it: an image built from a real filesystem cannot contain "a -> x" and
// "a/f" in the same layer, so such an entry is crafted or broken.
//
// Caching the fds keeps this at about one openat per directory of the
// layer: tar streams list the entries of a directory together.
type dirCache struct {
	root int
	fds  map[string]int // cleaned relative path (never ".") -> O_DIRECTORY fd
}

func newDirCache(root int) *dirCache {
	return &dirCache{root: root, fds: make(map[string]int)}
}

// get returns an fd for the directory p (a cleaned relative path). With
// create, missing directories are created with mode 0755, owned by the
// caller, as tar does for entries whose parents are not in the archive.
// The fd is owned by the cache and stays valid until the next trim or
// forget of p.
func (c *dirCache) get(p string, create bool) (int, error) {
	if p == "." {
		return c.root, nil
	}
	if fd, ok := c.fds[p]; ok {
		return fd, nil
	}
	parent, base := splitPath(p)
	pfd, err := c.get(parent, create)
	if err != nil {
		return -1, err
	}
	fd, err := openDirAt(pfd, base)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("mkdir %q: %w", p, err)
		}
		fd, err = openDirAt(pfd, base)
	}
	if err != nil {
		// O_DIRECTORY reports a symlink as ENOTDIR (ELOOP without it);
		// tell the two apart for a useful message.
		var st unix.Stat_t
		if (errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)) &&
			unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, fmt.Errorf("%w: %q is a symlink", ErrUnsafePath, p)
		}
		return -1, fmt.Errorf("open directory %q: %w", p, err)
	}
	c.fds[p] = fd
	return fd, nil
}

// trim closes all cached fds once there are too many. It must only be
// called while no fd returned by get is in use.
func (c *dirCache) trim() {
	if len(c.fds) >= maxCachedDirs {
		for p, fd := range c.fds {
			unix.Close(fd)
			delete(c.fds, p)
		}
	}
}

// forget drops the cached fds of p and everything below it, after p was
// removed.
func (c *dirCache) forget(p string) {
	for k, fd := range c.fds {
		if isAtOrBelow(k, p) {
			unix.Close(fd)
			delete(c.fds, k)
		}
	}
}

// close closes all fds, including the root.
func (c *dirCache) close() {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
	unix.Close(c.root)
}

func isAtOrBelow(p, dir string) bool {
	return p == dir || dir == "." || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

func openDirAt(dirfd int, name string) (int, error) {
	return ignoringEINTR(func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
}

// removeAllAt removes name (a directory) in dirfd and everything below it,
// without following symlinks.
func removeAllAt(dirfd int, name string) error {
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// Read all names first: deleting while iterating may skip entries.
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		err := unix.Unlinkat(fd, n, 0)
		if errors.Is(err, unix.EISDIR) {
			err = removeAllAt(fd, n)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// writeAll writes b to fd, retrying short writes.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

func timespec(t time.Time) unix.Timespec {
	// Not unix.NsecToTimespec(t.UnixNano()): that overflows outside
	// 1678..2262, and tar headers can hold any time.
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// futimens sets the access and modification times of fd
// (utimensat(fd, NULL, ...), which x/sys/unix does not expose).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// setxattrAt returns a function that sets extended attributes on name in
// dirfd without following it if it is a symlink, and a cleanup function.
// There is no fsetxattr for symlinks and device nodes (opening a device
// would open the device), and no setxattrat before Linux 6.13, so this
// goes through an O_PATH fd: /proc/self/fd/N is a magic link that resolves
// to exactly that inode, never re-walking a path.
func setxattrAt(dirfd int, name string) (func(key string, value []byte) error, func(), error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, nil, err
	}
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	set := func(key string, value []byte) error {
		return unix.Setxattr(proc, key, value, 0)
	}
	return set, func() { unix.Close(fd) }, nil
}
