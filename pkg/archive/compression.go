package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression algorithm of a layer blob.
type Compression int

const (
	// Uncompressed is a plain tar stream.
	Uncompressed Compression = iota
	// Gzip is a gzip (RFC 1952) compressed stream, possibly with multiple members.
	Gzip
	// Zstd is a Zstandard (RFC 8878) compressed stream.
	Zstd
)

// String returns the conventional name of the compression.
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// ErrUnsupportedCompression is returned by Decompress and ApplyLayer for
// streams that are compressed with an algorithm OCI layers do not use
// (bzip2, xz). Detecting them gives a clearer error than letting the tar
// reader choke on compressed bytes.
var ErrUnsupportedCompression = errors.New("unsupported layer compression")

var (
	gzipMagic  = []byte{0x1f, 0x8b, 0x08}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte{'B', 'Z', 'h'}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// magicLen is the number of leading bytes DetectCompression needs.
const magicLen = 6

// DetectCompression reports the compression of a stream given its first
// bytes (at least 6 for a reliable answer; fewer are treated as
// uncompressed unless they already match a magic number). Anything that
// is not gzip or zstd is reported as Uncompressed; Decompress rejects
// bzip2 and xz separately.
func DetectCompression(source []byte) Compression {
	switch {
	case bytes.HasPrefix(source, gzipMagic):
		return Gzip
	case bytes.HasPrefix(source, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// Decompress detects the compression of r from its magic bytes and returns
// a reader of the decompressed stream. Closing the returned reader releases
// decoder resources; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < magicLen {
		br = bufio.NewReaderSize(r, sourceBufferSize)
	}
	return decompress(br)
}

// sourceBufferSize is the read size on the (compressed) source. The source
// is typically an HTTP body; large reads keep syscalls and TLS records per
// byte low.
const sourceBufferSize = 128 << 10

// decompress is Decompress on an already buffered source, so that
// ApplyLayer can keep the *bufio.Reader to drain trailing bytes.
func decompress(br *bufio.Reader) (io.ReadCloser, Compression, error) {
	// Peek returns fewer bytes (and io.EOF) for very short streams; those
	// are simply not compressed, and an empty stream is an empty layer.
	head, err := br.Peek(magicLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, err
	}
	switch {
	case bytes.HasPrefix(head, bzip2Magic):
		return nil, Uncompressed, fmt.Errorf("%w: bzip2", ErrUnsupportedCompression)
	case bytes.HasPrefix(head, xzMagic):
		return nil, Uncompressed, fmt.Errorf("%w: xz", ErrUnsupportedCompression)
	}
	switch c := DetectCompression(head); c {
	case Gzip:
		// klauspost's gzip is a drop-in for compress/gzip with a faster
		// inflater. Multistream (the default) is required: pigz and
		// some registries produce concatenated members.
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip: %w", err)
		}
		return zr, c, nil
	case Zstd:
		// The library default accepts windows up to 512 MiB; 128 MiB
		// still covers `zstd --long=27` while keeping what a hostile
		// frame header can make us allocate per layer bounded.
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), c, nil
	default:
		return io.NopCloser(br), c, nil
	}
}
