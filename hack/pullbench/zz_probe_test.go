package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func untarBuf(r io.Reader, dir string, bufSize int) error {
	tr := tar.NewReader(r)
	buf := make([]byte, bufSize)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFile(p, tr, 0o644, buf)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		}
		if err != nil {
			return err
		}
	}
}

func TestProbeUntar(t *testing.T) {
	dir := t.TempDir()
	v := vocabulary(1)
	var paths []string
	for i := 0; i < 6; i++ {
		l, err := writeLayer(context.Background(), dir, layerSpec{idx: i, seed: uint64(i), target: 33e6}, v)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, l.Path)
	}
	variants := map[string]func(p, dst string) error{}
	for _, bs := range []int{64 << 10, 1 << 20} {
		variants[fmt.Sprintf("direct-%d", bs)] = func(p, dst string) error {
			return withGunzip(p, func(r io.Reader) error { return untarBuf(r, dst, bs) })
		}
		variants[fmt.Sprintf("pipe-%d", bs)] = func(p, dst string) error {
			pr, pw := io.Pipe()
			go func() {
				pw.CloseWithError(withGunzip(p, func(r io.Reader) error {
					_, err := io.CopyBuffer(pw, r, make([]byte, 256<<10))
					return err
				}))
			}()
			err := untarBuf(pr, dst, bs)
			pr.CloseWithError(err)
			return err
		}
	}
	for r := 0; r < 2; r++ {
		for name, f := range variants {
			syncDisks()
			dst := filepath.Join(dir, "out")
			start := time.Now()
			err := forEach(len(paths), true, func(i int) error { return f(paths[i], filepath.Join(dst, fmt.Sprint(i))) })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", name, time.Since(start))
			os.RemoveAll(dst)
		}
		syncDisks()
		start := time.Now()
		dst := filepath.Join(dir, "out")
		timeUntar(context.Background(), paths, dst)
		t.Logf("timeUntar: %s", time.Since(start))
		os.RemoveAll(dst)
	}
}
