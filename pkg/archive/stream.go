package archive

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"
)

// Decompression (CPU bound) runs in its own goroutine and hands the tar
// stream to the extractor (syscall bound) through a small ring of large
// buffers, so both make progress at the same time on different cores. An
// io.Pipe would not do: it is unbuffered, so each side would mostly wait
// for the other.
const (
	chunkSize = 1 << 20
	numChunks = 4
)

// stream is an io.Reader of the decompressed layer that is filled by a
// producer goroutine. The producer also computes the DiffID, because every
// decompressed byte passes through it exactly once, including padding
// after the end of the tar archive that the tar reader never looks at.
type stream struct {
	ctx  context.Context
	src  io.Reader // decompressed data
	raw  io.Reader // compressed source, drained after src hits EOF
	kind Compression

	full chan []byte   // filled chunks, closed by the producer when done
	free chan []byte   // empty chunks to fill
	done chan struct{} // closed by the consumer to stop the producer
	wg   sync.WaitGroup

	// Written by the producer before closing full, read by the consumer
	// after receiving from the closed channel.
	err    error // io.EOF on a clean end
	digest hash.Hash
	size   int64

	cur, curBuf []byte // consumer side: unread part of the current chunk
	stopOnce    sync.Once
}

func newStream(ctx context.Context, src, raw io.Reader, kind Compression) *stream {
	s := &stream{
		ctx:    ctx,
		src:    src,
		raw:    raw,
		kind:   kind,
		full:   make(chan []byte, numChunks),
		free:   make(chan []byte, numChunks),
		done:   make(chan struct{}),
		digest: sha256.New(),
	}
	for range numChunks {
		s.free <- make([]byte, chunkSize)
	}
	s.wg.Add(1)
	go s.produce()
	return s
}

func (s *stream) produce() {
	defer s.wg.Done()
	defer close(s.full)
	for {
		var buf []byte
		select {
		case buf = <-s.free:
		case <-s.done:
			s.err = context.Canceled
			return
		}
		n, err := fill(s.src, buf)
		if n > 0 {
			s.digest.Write(buf[:n])
			s.size += int64(n)
			select {
			case s.full <- buf[:n]:
			case <-s.done:
				s.err = context.Canceled
				return
			}
		}
		if err == io.EOF {
			// Whatever follows the compressed stream (normally
			// nothing; multistream gzip and zstd read to EOF
			// themselves) still has to be consumed so that a digest
			// the caller computes over the blob is complete.
			if _, err := io.Copy(io.Discard, s.raw); err != nil {
				s.err = fmt.Errorf("reading layer: %w", err)
				return
			}
			s.err = io.EOF
			return
		}
		if err != nil {
			// From the decompressor or the source below it.
			s.err = fmt.Errorf("reading %s layer: %w", s.kind, err)
			return
		}
		if err := s.ctx.Err(); err != nil {
			s.err = err
			return
		}
	}
}

// fill reads into buf until it is full or r returns an error. Unlike
// io.ReadFull it keeps io.ErrUnexpectedEOF from the decompressor (a
// truncated stream) distinguishable from a clean io.EOF.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read implements io.Reader for the consumer.
func (s *stream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.curBuf != nil {
			// Never blocks: free has room for every chunk.
			s.free <- s.curBuf[:cap(s.curBuf)]
			s.curBuf = nil
		}
		buf, ok := <-s.full
		if !ok {
			return 0, s.err
		}
		s.cur, s.curBuf = buf, buf
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// drain reads the rest of the stream, returning nil at a clean EOF.
func (s *stream) drain() error {
	for {
		s.cur = nil
		if _, err := s.Read(nil); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// stop tells the producer to finish and waits for it, so that the source
// is never read after ApplyLayer returns. The producer may be blocked in a
// Read of the source; that read has to return by itself (for an HTTP body,
// by cancelling the request's context).
func (s *stream) stop() {
	s.stopOnce.Do(func() { close(s.done) })
	s.wg.Wait()
}

// result returns the digest and size of the decompressed stream. It is only
// meaningful after Read returned io.EOF.
func (s *stream) result() ([]byte, int64) {
	return s.digest.Sum(nil), s.size
}
