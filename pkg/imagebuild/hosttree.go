package imagebuild

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// HostTree returns entries copying the host directory src to dst in the
// image: directories, regular files (permission, set-uid/gid and sticky
// bits kept; dst itself gets src's mode) and symlinks (targets verbatim).
// Ownership is root:root and timestamps are dropped, so only the tree's
// names, modes and contents matter. Other file types (devices, sockets,
// FIFOs) are rejected.
func HostTree(dst, src string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch {
		case info.IsDir():
			if c := path.Clean("/" + target); c != "/" {
				out = append(out, Dir(target, mode))
			}
		case info.Mode().IsRegular():
			out = append(out, HostFile(target, mode, p))
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, Symlink(target, link))
		default:
			return fmt.Errorf("imagebuild: %s: unsupported file type %s", p, info.Mode().Type())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
