package benchkit

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// genVersion names the layer cache (see PullSpec.CacheDirName); bump it
// when the generator's output changes, so that no stale layers are reused.
const genVersion = 1

// mtime is the fixed modification time of every entry, for reproducible
// layers (the same seed gives the same digests).
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Layer is a generated layer blob on disk. Its JSON form is what
// hack/bench caches, so the field names are part of that cache.
type Layer struct {
	Path   string
	Digest digest.Digest // of the gzip blob
	Size   int64         // of the gzip blob
	DiffID digest.Digest // of the tar
	USize  int64         // of the tar
	Files  int           // regular files
	Dirs   int
}

// layerSpec says what layer to generate.
type layerSpec struct {
	idx    int    // names the layer's directories, so layers do not overlap
	seed   uint64 // everything else follows from it
	target int64  // content bytes (the tar is a little larger)
}

// generateLayers writes the layers of specs into dir, as many at once as
// there are CPUs: each is one sequential tar+gzip stream, so this is what
// keeps generation from taking minutes.
func generateLayers(ctx context.Context, dir string, specs []layerSpec, vocab []string) ([]*Layer, error) {
	out := make([]*Layer, len(specs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i, s := range specs {
		g.Go(func() error {
			l, err := writeLayer(gctx, dir, s, vocab)
			out[i] = l
			return err
		})
	}
	return out, g.Wait()
}

// hashCounter hashes and counts what is written through it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, c.h.Sum(nil))
}

// writeLayer generates a layer into dir/layer<idx>.tar.gz, hashing the tar
// (diff ID) and the gzip stream (blob digest) as it goes, so the layer is
// never held in memory.
func writeLayer(ctx context.Context, dir string, spec layerSpec, vocab []string) (*Layer, error) {
	rng := rand.New(rand.NewPCG(spec.seed, 0x706c616e))
	entries := planLayer(rng, vocab, spec.idx, spec.target)
	l := &Layer{Path: filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", spec.idx))}
	f, err := os.Create(l.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	blobHash, tarHash := newHashCounter(), newHashCounter()
	gz, err := gzip.NewWriterLevel(io.MultiWriter(bw, blobHash), gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, tarHash))
	gen := newContentGen(spec.seed, vocab)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := writeEntry(tw, gen, e); err != nil {
			return nil, err
		}
		switch e.kind {
		case tar.TypeReg:
			l.Files++
		case tar.TypeDir:
			l.Dirs++
		}
	}
	for _, c := range []io.Closer{tw, gz} {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	l.Digest, l.Size = blobHash.digest(), blobHash.n
	l.DiffID, l.USize = tarHash.digest(), tarHash.n
	return l, f.Close()
}

func writeEntry(tw *tar.Writer, gen *contentGen, e entry) error {
	hdr := &tar.Header{
		Typeflag: e.kind, Name: e.name, Size: e.size, Mode: e.mode, Linkname: e.link,
		ModTime: mtime, Uname: "root", Gname: "root",
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if e.kind != tar.TypeReg {
		return nil
	}
	return gen.write(tw, e.size)
}
