// The layer generator is hack/pullbench's (same seed, same layers, same
// digests), copied so that both benchmarks build alone.

package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
)

// randomFrac is the share of file bytes that are random (incompressible);
// the rest is text from a small vocabulary, which gzip squeezes about
// 3.7:1. 0.065 gives the ~3:1 overall ratio of real images (binaries,
// libraries, text); the achieved ratio is printed with the results.
const randomFrac = 0.065

// vocabBits sets the vocabulary size (2^vocabBits words): small enough for
// text to compress like source code and man pages, and a power of two so
// that one 64-bit random number picks several words.
const vocabBits = 9

// bigShare is the share of a layer's bytes in its few large files; the rest
// is spread over many small ones, as in a typical distro or language layer.
const bigShare = 0.55

// mtime is the fixed modification time of every entry, for reproducible
// layers (the same seed gives the same digests).
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one planned tar entry.
type entry struct {
	name string
	kind byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	size int64
	mode int64
	link string
}

// layer is a generated layer blob on disk.
type layer struct {
	Path   string
	Digest digest.Digest // of the gzip blob
	Size   int64         // of the gzip blob
	DiffID digest.Digest // of the tar
	USize  int64         // of the tar
	Files  int           // regular files
	Dirs   int
}

// vocabulary returns the words text is made of: lowercase pseudo-words of
// 2 to 11 letters, mostly short, the same for every layer of a seed.
func vocabulary(seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x766f636162))
	words := make([]string, 1<<vocabBits)
	for i := range words {
		n := 2 + rng.IntN(4) + rng.IntN(7)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(b)
	}
	return words
}

// separators follow words in text; a few kinds make it look like code and
// prose rather than one endless line.
var separators = []string{" ", " ", " ", " ", "\n", "_", ".", "/", "(", ", ", "\t", " = "}

// contentGen writes file content: text segments interleaved with random
// byte segments.
type contentGen struct {
	src   *rand.ChaCha8
	rng   *rand.Rand
	words [][]byte // vocabulary words with their separator
	buf   []byte
}

func newContentGen(seed uint64, vocab []string) *contentGen {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	src := rand.NewChaCha8(s)
	rng := rand.New(src)
	words := make([][]byte, len(vocab))
	for i, w := range vocab {
		words[i] = []byte(w + separators[rng.IntN(len(separators))])
	}
	return &contentGen{src: src, rng: rng, words: words, buf: make([]byte, 8<<10)}
}

// write writes n bytes of content to w in segments of 0.5 to 4.5 KiB, each
// random with probability randomFrac and text otherwise: segments short
// enough that gzip sees the mix within its 32 KiB window, as in binaries.
func (g *contentGen) write(w io.Writer, n int64) error {
	for n > 0 {
		seg := min(int64(512+g.rng.IntN(4096)), n)
		b := g.buf[:seg]
		if g.rng.Float64() < randomFrac {
			_, _ = g.src.Read(b)
		} else {
			g.text(b)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= seg
	}
	return nil
}

// text fills dst with vocabulary words; one random number picks several.
func (g *contentGen) text(dst []byte) {
	const perDraw = 64 / vocabBits
	mask := uint64(len(g.words) - 1)
	for i := 0; i < len(dst); {
		r := g.src.Uint64()
		for k := 0; k < perDraw && i < len(dst); k++ {
			i += copy(dst[i:], g.words[r&mask])
			r >>= vocabBits
		}
	}
}

// planner lays out the entries of one layer.
type planner struct {
	rng     *rand.Rand
	vocab   []string
	entries []entry
	parents []string // directories new directories may go in
	counter int      // keeps generated names unique
}

func (p *planner) dir(name string) {
	p.entries = append(p.entries, entry{name: name + "/", kind: tar.TypeDir, mode: 0o755})
}

func (p *planner) name() string {
	p.counter++
	return fmt.Sprintf("%s%d", p.vocab[p.rng.IntN(len(p.vocab))], p.counter)
}

// newDir adds a directory below a random earlier one, at most 6 levels deep.
func (p *planner) newDir() string {
	parent := p.parents[p.rng.IntN(len(p.parents))]
	d := path.Join(parent, p.name())
	p.dir(d)
	if strings.Count(d, "/") < 5 {
		p.parents = append(p.parents, d)
	}
	return d
}

var extensions = []string{"", ".so", ".py", ".txt", ".h", ".json", ".go", ".mo", ".gz", ".html"}

func (p *planner) file(dir string, size int64, exec bool) {
	mode := int64(0o644)
	if exec || p.rng.IntN(10) == 0 {
		mode = 0o755
	}
	name := path.Join(dir, p.name()+extensions[p.rng.IntN(len(extensions))])
	p.entries = append(p.entries, entry{name: name, kind: tar.TypeReg, size: size, mode: mode})
}

func (p *planner) symlink(dir, target string) {
	name := path.Join(dir, p.name())
	p.entries = append(p.entries, entry{name: name, kind: tar.TypeSymlink, mode: 0o777, link: path.Base(target)})
}

// planLayer lays out a layer of about target content bytes under its own
// directories (as an image's layers add packages): bigShare of it in 2 to 4
// large files, the rest in small files of 64 B to 256 KiB (log-uniform, so
// most are a few KiB) in directories of 3 to 42 files, a symlink now and
// then. The large files are spread over the run of small ones.
func planLayer(rng *rand.Rand, vocab []string, idx int, target int64) []entry {
	p := &planner{rng: rng, vocab: vocab}
	for _, d := range []string{"usr", "usr/lib", "usr/share", "opt"} {
		p.dir(d)
	}
	for _, r := range []string{"usr/lib/bench%d", "usr/share/bench%d", "opt/bench%d"} {
		d := fmt.Sprintf(r, idx)
		p.dir(d)
		p.parents = append(p.parents, d)
	}
	bigs := splitSize(rng, int64(float64(target)*bigShare), 2+rng.IntN(3))
	smallBudget := target - sum(bigs)
	var small int64
	placed, left, cur, lastFile := 0, 0, p.parents[0], ""
	for small < smallBudget || placed < len(bigs) {
		if left == 0 {
			cur, left = p.newDir(), 3+rng.IntN(40)
		}
		// Place big file i once the small files pass (i+1)/(n+1) of theirs.
		if placed < len(bigs) && (small >= smallBudget || float64(small) >= float64(smallBudget)*float64(placed+1)/float64(len(bigs)+1)) {
			p.file(cur, bigs[placed], true)
			placed++
			continue
		}
		size := min(logUniform(rng, 64, 256<<10), smallBudget-small)
		p.file(cur, size, false)
		small += size
		left--
		if lastFile != "" && rng.IntN(30) == 0 {
			p.symlink(cur, lastFile)
		}
		lastFile = p.entries[len(p.entries)-1].name
	}
	return p.entries
}

// splitSize splits total into n random parts of at least a quarter of the
// mean each.
func splitSize(rng *rand.Rand, total int64, n int) []int64 {
	w := make([]float64, n)
	var sw float64
	for i := range w {
		w[i] = 0.25 + rng.Float64()
		sw += w[i]
	}
	parts := make([]int64, n)
	var done int64
	for i := range parts {
		parts[i] = int64(float64(total) * w[i] / sw)
		done += parts[i]
	}
	parts[n-1] += total - done
	return parts
}

func logUniform(rng *rand.Rand, lo, hi float64) int64 {
	return int64(math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo))))
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
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

// layerSpec says what layer to generate.
type layerSpec struct {
	idx    int    // names the layer's directories, so layers do not overlap
	seed   uint64 // everything else follows from it
	target int64  // content bytes (the tar is a little larger)
}

// writeLayer generates a layer into dir/layer<idx>.tar.gz, hashing the tar
// (diff ID) and the gzip stream (blob digest) as it goes, so the layer is
// never held in memory.
func writeLayer(ctx context.Context, dir string, spec layerSpec, vocab []string) (*layer, error) {
	rng := rand.New(rand.NewPCG(spec.seed, 0x706c616e))
	entries := planLayer(rng, vocab, spec.idx, spec.target)
	l := &layer{Path: filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", spec.idx))}
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
