// Package content is cri-rt's content-addressed blob store: image manifests,
// indexes, configs and (optionally) layer blobs, each stored once under its
// digest.
//
// A blob is written through an ingest: a named, resumable, in-progress write
// (the ref is chosen by the caller, typically derived from the digest being
// pulled). Committing an ingest verifies its size and digest and then makes
// it visible atomically; until then readers see nothing, so a reader never
// observes partial content and an interrupted download never becomes a blob.
//
// Every implementation must pass the conformance suite in
// pkg/content/testsuite. LocalStore is the filesystem implementation.
//
// Errors are the errdefs sentinels, wrapped with context:
//
//   - ErrNotFound: the blob or ingest does not exist.
//   - ErrAlreadyExists: Writer was given an expected digest whose blob is
//     already committed (nothing to download).
//   - ErrFailedPrecondition: a commit whose size or digest does not match
//     what was expected, or a resume whose expectations contradict the
//     recorded ones.
//   - ErrUnavailable: the ingest is held by another writer.
//   - ErrInvalidArgument: a malformed digest, an unsupported algorithm or an
//     empty ref.
package content

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Info describes a committed blob.
type Info struct {
	Digest digest.Digest
	// Size is the blob's length in bytes.
	Size int64
	// CreatedAt is when the blob was committed. Garbage collection uses it
	// as a grace period for blobs not yet referenced by metadata.
	CreatedAt time.Time
}

// IngestStatus describes an in-progress write.
type IngestStatus struct {
	Ref string
	// Offset is the number of bytes written so far; a resumed Writer
	// continues from here.
	Offset int64
	// Total is the size given to Writer, or -1 if unknown.
	Total int64
	// Expected is the digest given to Writer, or "" if unknown.
	Expected digest.Digest
	// StartedAt is when the ingest was first opened; UpdatedAt is the last
	// time data was written to it.
	StartedAt time.Time
	UpdatedAt time.Time
}

// ReaderAt reads a committed blob. Blobs are immutable, so concurrent ReadAt
// calls are safe and a blob deleted while open stays readable until Close.
// Use io.NewSectionReader(ra, 0, ra.Size()) for a streaming reader.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
}

// Store is a content-addressed blob store. Implementations are safe for
// concurrent use. Sizes are in bytes; a negative size means "unknown" (by
// convention -1) and 0 is the real size of an empty blob.
type Store interface {
	// Info returns the blob's Info, or ErrNotFound if it is not committed.
	Info(ctx context.Context, dgst digest.Digest) (Info, error)

	// ReaderAt opens a committed blob for reading, or returns ErrNotFound.
	ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error)

	// ReadAll returns a committed blob's content. It is meant for small
	// blobs (manifests, configs); it does not re-verify the digest, which
	// was verified at commit.
	ReadAll(ctx context.Context, dgst digest.Digest) ([]byte, error)

	// Writer opens the ingest named ref, creating it or resuming it.
	// expected and size may be "" and -1 when unknown; whatever is given is
	// recorded with the ingest and checked again at Commit, even by a later
	// Writer that resumes without them.
	//
	// If expected is given and its blob is already committed, Writer
	// returns ErrAlreadyExists: there is nothing to write.
	//
	// If the ingest exists, the writer resumes at its current offset
	// (Writer.Offset). Digest state is not persisted: resuming re-reads the
	// bytes already written to rebuild it, so it costs a read of the
	// partial data but survives crashes and truncation. Resuming with an
	// expected digest or size that contradicts the recorded one fails with
	// ErrFailedPrecondition; the caller may AbortIngest and start over.
	//
	// Only one writer may hold a ref at a time: while one is open, Writer
	// for the same ref fails at once with ErrUnavailable instead of
	// blocking, so a puller can decide itself whether to wait (another pull
	// of the same blob is in flight) or give up.
	Writer(ctx context.Context, ref string, expected digest.Digest, size int64) (Writer, error)

	// Delete removes a committed blob, or returns ErrNotFound. Readers that
	// already opened it keep reading the old content.
	Delete(ctx context.Context, dgst digest.Digest) error

	// Walk calls fn for every committed blob. An error from fn stops the
	// walk and is returned. Blobs committed or deleted during the walk may
	// or may not be seen.
	Walk(ctx context.Context, fn func(Info) error) error

	// Ingests lists the in-progress writes, open or not.
	Ingests(ctx context.Context) ([]IngestStatus, error)

	// AbortIngest deletes the ingest named ref and its data. It returns
	// ErrNotFound if there is none and ErrUnavailable while a writer holds
	// it (that writer's owner should call Writer.Abort instead).
	AbortIngest(ctx context.Context, ref string) error

	// Usage returns the bytes (sum of blob sizes) and inodes (number of
	// blobs) used by committed blobs, as reported by CRI ImageFsInfo.
	// In-progress ingests are not counted.
	Usage(ctx context.Context) (bytes, inodes int64, err error)
}

// Writer writes one ingest. It is an io.Writer; writes go straight to the
// ingest's data and are not synced until Commit. A Writer must be released
// with exactly one of Commit, Close or Abort; calling Close or Abort after
// that is a harmless no-op, so `defer w.Close()` is always safe.
type Writer interface {
	io.Writer

	// Offset returns the number of bytes written so far, including the
	// bytes found when the ingest was resumed.
	Offset() int64

	// Digest returns the digest of the bytes written so far, in the
	// algorithm of the expected digest (sha256 if none was given).
	Digest() digest.Digest

	// Commit verifies the ingest against size and expected (each checked
	// when given, i.e. size >= 0 and expected != "") and against what was
	// given to Writer, then makes it a blob atomically and read-only.
	//
	// A mismatch returns an error wrapping ErrFailedPrecondition that names
	// the expected and actual digest or size, and deletes the ingest: data
	// known to be bad must not be resumed. If the blob was committed
	// meanwhile (e.g. by a concurrent pull under another ref), Commit
	// succeeds and just deletes the ingest.
	//
	// Commit releases the writer whatever the outcome. On errors other than
	// a mismatch (I/O, a done ctx) the ingest is kept for a later resume.
	Commit(ctx context.Context, size int64, expected digest.Digest) error

	// Close releases the writer and keeps the ingest for a later resume.
	Close() error

	// Abort releases the writer and deletes the ingest.
	Abort() error
}
