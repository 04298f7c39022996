//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// benchLayerSize is the approximate uncompressed size of the benchmark
// layer.
const benchLayerSize = 50 << 20

type benchLayer struct {
	plain, gzip, zstd []byte
	files             int
}

// getBenchLayer builds, once per process, a deterministic layer that looks
// like a typical image layer: many small files, some medium and a few
// large ones, in nested directories, with text (compressible), binary-like
// (partly compressible) and random (incompressible) content.
var getBenchLayer = sync.OnceValues(func() (*benchLayer, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "container", "runtime", "layer", "overlay", "func", "return", "error",
		"nil", "package", "import", "string", "int", "if", "for", "range", "struct", "type",
		"const", "var", "/usr/lib/x86_64-linux-gnu", "libc.so.6", "GLIBC_2.34", "\n", "\t", "{", "}"}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	content := make([]byte, 8<<20)
	files := 0
	for d := 0; buf.Len() < benchLayerSize; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d/sub%d/", d/8, d%8)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
		for i := 0; i < 40 && buf.Len() < benchLayerSize; i++ {
			var size int
			switch p := rng.IntN(100); {
			case p < 60:
				size = rng.IntN(8 << 10)
			case p < 90:
				size = 8<<10 + rng.IntN(120<<10)
			case p < 99:
				size = 128<<10 + rng.IntN(896<<10)
			default:
				size = 1<<20 + rng.IntN(7<<20)
			}
			data := content[:size]
			switch p := rng.IntN(100); {
			case p < 55: // text
				n := 0
				for n < size {
					n += copy(data[n:], words[rng.IntN(len(words))])
					if n < size {
						data[n] = ' '
						n++
					}
				}
			case p < 85: // "binary": random bytes between runs of zeros
				for j := range data {
					if j%64 < 24 {
						data[j] = byte(rng.Uint32())
					} else {
						data[j] = 0
					}
				}
			default: // already compressed
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
			}
			name := fmt.Sprintf("%sfile%02d", dir, i)
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(size), Mode: 0o644, ModTime: mtime}
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			if _, err := tw.Write(data); err != nil {
				return nil, err
			}
			files++
			if i%10 == 0 {
				err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name + ".link", Linkname: filepath.Base(name), Mode: 0o777, ModTime: mtime})
				if err != nil {
					return nil, err
				}
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	l := &benchLayer{plain: buf.Bytes(), files: files}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(l.plain); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l.gzip = gz.Bytes()

	enc, err := zstd.NewWriter(nil)
	if err != nil {
		return nil, err
	}
	l.zstd = enc.EncodeAll(l.plain, nil)
	enc.Close()
	return l, nil
})

func (l *benchLayer) blob(c Compression) []byte {
	switch c {
	case Gzip:
		return l.gzip
	case Zstd:
		return l.zstd
	}
	return l.plain
}

// BenchmarkApplyLayer measures unpacking a ~50 MB layer; MB/s are of
// uncompressed tar bytes, comparable with BenchmarkDecompress.
func BenchmarkApplyLayer(b *testing.B) {
	requireRoot(b)
	l, err := getBenchLayer()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []Compression{Gzip, Zstd, Uncompressed} {
		b.Run(c.String(), func(b *testing.B) {
			blob := l.blob(c)
			base := b.TempDir()
			b.SetBytes(int64(len(l.plain)))
			b.ResetTimer()
			for i := range b.N {
				dir := filepath.Join(base, fmt.Sprint(i))
				if err := os.Mkdir(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				if _, err := ApplyLayer(context.Background(), dir, bytes.NewReader(blob)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			// After the loop: ResetTimer drops reported metrics.
			b.ReportMetric(float64(len(blob))/float64(len(l.plain)), "ratio")
			b.ReportMetric(float64(l.files), "files")
		})
	}
}

// BenchmarkDecompress is the bound for BenchmarkApplyLayer with
// compression: only decompressing the same layer, with the same 1 MiB
// reads, without hashing or writing files. (Not io.Copy: it would use the
// decoders' WriteTo, which for gzip is markedly slower.)
func BenchmarkDecompress(b *testing.B) {
	l, err := getBenchLayer()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunkSize)
	for _, c := range []Compression{Gzip, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			blob := l.blob(c)
			b.SetBytes(int64(len(l.plain)))
			b.ResetTimer()
			for range b.N {
				rc, _, err := Decompress(bytes.NewReader(blob))
				if err != nil {
					b.Fatal(err)
				}
				for err == nil {
					_, err = fill(rc, buf)
				}
				if err != io.EOF {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
