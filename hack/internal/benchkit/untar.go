package benchkit

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
)

// withGunzip calls fn with the decompressed content of a gzip file, read
// with the gzip package cri-rt uses.
func withGunzip(path string, fn func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
	defer zr.Close()
	return fn(zr)
}

// untar unpacks the regular files, directories and symlinks of a tar
// stream into dir; the benchmark's layers hold nothing else.
func untar(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// The names are the benchmark's own, so no path checks here.
		p := filepath.Join(dir, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(hdr.Mode).Perm())
		case tar.TypeReg:
			err = writeFile(p, tr, os.FileMode(hdr.Mode).Perm(), buf)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode, buf []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	// Hiding ReadFrom makes the copy use buf (1 MiB writes) rather than a
	// fresh 32 KiB buffer per file.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, r, buf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
