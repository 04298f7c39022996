package imagebuild

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// EntryType is the kind of filesystem object an Entry creates.
type EntryType int

const (
	// TypeFile is a regular file whose content comes from Entry.Content or
	// Entry.Source.
	TypeFile EntryType = iota
	// TypeDir is a directory.
	TypeDir
	// TypeSymlink is a symbolic link pointing at Entry.Target (stored
	// verbatim, so it may be relative or absolute).
	TypeSymlink
	// TypeHardlink is a hard link to the regular file at Entry.Target, which
	// must be in the same layer. Hard links matter for multi-call binaries:
	// masking one name with a bind mount must not mask the others, which is
	// what happens when the names are symlinks.
	TypeHardlink
)

// Entry is one object in a layer.
type Entry struct {
	// Path inside the image; leading "/" is optional and ignored.
	Path string
	Type EntryType
	// Mode holds permission bits plus optionally fs.ModeSetuid, fs.ModeSetgid
	// and fs.ModeSticky. Zero means 0644 for files and 0755 for directories.
	Mode fs.FileMode
	UID  int
	GID  int
	// Content is the file body for TypeFile when Source is empty.
	Content []byte
	// Source is a host file read at build time for TypeFile. Its content is
	// used, never its mode, owner or timestamps.
	Source string
	// Target is the link target for TypeSymlink and TypeHardlink.
	Target string
}

// File returns a regular file entry with the given content.
func File(p string, mode fs.FileMode, content []byte) Entry {
	return Entry{Path: p, Type: TypeFile, Mode: mode, Content: content}
}

// HostFile returns a regular file entry whose content is read from src on
// the build host.
func HostFile(p string, mode fs.FileMode, src string) Entry {
	return Entry{Path: p, Type: TypeFile, Mode: mode, Source: src}
}

// Dir returns a directory entry.
func Dir(p string, mode fs.FileMode) Entry {
	return Entry{Path: p, Type: TypeDir, Mode: mode}
}

// Symlink returns a symbolic link entry.
func Symlink(p, target string) Entry {
	return Entry{Path: p, Type: TypeSymlink, Mode: 0o777, Target: target}
}

// Hardlink returns a hard link entry pointing at the file target.
func Hardlink(p, target string) Entry {
	return Entry{Path: p, Type: TypeHardlink, Target: target}
}

// Owned returns a copy of e owned by uid:gid.
func (e Entry) Owned(uid, gid int) Entry {
	e.UID, e.GID = uid, gid
	return e
}

// cleanPath normalises an image path to the relative, slash-separated form
// used in layer tarballs ("usr/bin/x"). It rejects paths escaping the root.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("imagebuild: entry path %q names the root", p)
	}
	if strings.Contains(p, "\\") {
		return "", fmt.Errorf("imagebuild: entry path %q contains a backslash", p)
	}
	return strings.TrimPrefix(c, "/"), nil
}

// content returns the body of a regular file entry.
func (e Entry) content() ([]byte, error) {
	if e.Source == "" {
		return e.Content, nil
	}
	b, err := os.ReadFile(e.Source)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: reading source of %s: %w", e.Path, err)
	}
	return b, nil
}

// tarMode converts the entry's fs.FileMode into tar header mode bits.
func (e Entry) tarMode() int64 {
	m := e.Mode
	if m&fs.ModePerm == 0 && m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0 {
		switch e.Type {
		case TypeDir:
			m |= 0o755
		case TypeSymlink:
			m |= 0o777
		default:
			m |= 0o644
		}
	}
	bits := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
