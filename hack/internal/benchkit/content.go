package benchkit

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
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
