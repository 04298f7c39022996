// Package testsuite is the conformance suite for content.Store
// implementations, in the manner of distribution's storage driver suite
// and containerd's content testsuite: an implementation's tests call Run,
// and every behaviour documented on content.Store and content.Writer is
// checked the same way for all of them.
package testsuite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/cri-rt/cri-rt/pkg/content"
)

// IngestTruncater is implemented by stores, or by test wrappers around
// them, that can simulate a crash which lost the tail of an ingest's data
// (e.g. written but never synced). ResumeTruncate is skipped for stores
// without it; the public API offers no way to cause such a crash.
type IngestTruncater interface {
	// TruncateIngest cuts the data of the (closed) ingest ref to size.
	TruncateIngest(ref string, size int64) error
}

// Run runs the suite as subtest name of t. newStore must return an empty
// store, independent of the stores returned to other subtests (they run in
// parallel); it may register cleanups on the t it is given.
func Run(t *testing.T, name string, newStore func(t *testing.T) content.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, content.Store)
	}{
		{"WriteCommitRead", testWriteCommitRead},
		{"EmptyBlob", testEmptyBlob},
		{"Info", testInfo},
		{"NotFound", testNotFound},
		{"InvalidArgument", testInvalidArgument},
		{"PartialNotVisible", testPartialNotVisible},
		{"CommitWrongDigest", testCommitWrongDigest},
		{"CommitWrongSize", testCommitWrongSize},
		{"CommitWithoutExpected", testCommitWithoutExpected},
		{"Resume", testResume},
		{"ResumeKeepsExpectations", testResumeKeepsExpectations},
		{"ResumeMismatch", testResumeMismatch},
		{"ResumeTruncate", testResumeTruncate},
		{"ConcurrentWriters", testConcurrentWriters},
		{"AlreadyExists", testAlreadyExists},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"Ingests", testIngests},
		{"ConcurrentCommitsSameContent", testConcurrentCommitsSameContent},
		{"Usage", testUsage},
		{"SHA512", testSHA512},
		{"WriterReleased", testWriterReleased},
		{"CancelledContext", testCancelledContext},
	}
	t.Run(name, func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, newStore(t))
			})
		}
	})
}

// seed makes every randomBytes call return different content, so blobs of
// different tests and calls never collide by accident.
var seed atomic.Uint64

// randomBytes returns n bytes of pseudo-random content unique to this call.
func randomBytes(n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed.Add(1))
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// writeAll writes data to w in uneven chunks, to exercise offsets that are
// not aligned to anything, and checks Offset as it goes.
func writeAll(t *testing.T, w content.Writer, data []byte) {
	t.Helper()
	start := w.Offset()
	chunks := []int{1, 7, 4096, 65537, 3}
	for i, off := 0, 0; off < len(data); i++ {
		n := min(chunks[i%len(chunks)], len(data)-off)
		m, err := w.Write(data[off : off+n])
		noErr(t, err)
		equal(t, n, m)
		off += n
		equal(t, start+int64(off), w.Offset())
	}
}

// commit stores data under ref with its digest and size expected, and
// returns the digest.
func commit(t *testing.T, s content.Store, ref string, data []byte) digest.Digest {
	t.Helper()
	ctx := t.Context()
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, ref, dgst, int64(len(data)))
	noErr(t, err)
	defer w.Close()
	writeAll(t, w, data)
	equal(t, dgst, w.Digest())
	noErr(t, w.Commit(ctx, int64(len(data)), dgst))
	return dgst
}

// blobs returns the digests Walk reports, sorted.
func blobs(t *testing.T, s content.Store) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	noErr(t, s.Walk(t.Context(), func(info content.Info) error {
		out = append(out, info.Digest)
		return nil
	}))
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sorted returns ds sorted, for comparison with blobs.
func sorted(ds ...digest.Digest) []digest.Digest {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// ingests returns the ingests sorted by ref.
func ingests(t *testing.T, s content.Store) []content.IngestStatus {
	t.Helper()
	st, err := s.Ingests(t.Context())
	noErr(t, err)
	sort.Slice(st, func(i, j int) bool { return st[i].Ref < st[j].Ref })
	return st
}

// mustBeAbsent checks that dgst is not readable in any way.
func mustBeAbsent(t *testing.T, s content.Store, dgst digest.Digest) {
	t.Helper()
	ctx := t.Context()
	_, err := s.Info(ctx, dgst)
	isErr(t, err, errdefs.ErrNotFound)
	_, err = s.ReadAll(ctx, dgst)
	isErr(t, err, errdefs.ErrNotFound)
	_, err = s.ReaderAt(ctx, dgst)
	isErr(t, err, errdefs.ErrNotFound)
}

func testWriteCommitRead(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(300_000)
	dgst := commit(t, s, "write-commit-read", data)

	got, err := s.ReadAll(ctx, dgst)
	noErr(t, err)
	isTrue(t, bytes.Equal(data, got), "ReadAll returned different content")

	ra, err := s.ReaderAt(ctx, dgst)
	noErr(t, err)
	defer ra.Close()
	equal(t, int64(len(data)), ra.Size())

	buf := make([]byte, 1000)
	n, err := ra.ReadAt(buf, 12345)
	noErr(t, err)
	equal(t, len(buf), n)
	equal(t, data[12345:12345+1000], buf)

	// A read running past the end returns what there is and io.EOF, as
	// io.ReaderAt requires.
	n, err = ra.ReadAt(buf, int64(len(data)-10))
	isErr(t, err, io.EOF)
	equal(t, 10, n)
	equal(t, data[len(data)-10:], buf[:10])

	all, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	noErr(t, err)
	isTrue(t, bytes.Equal(data, all), "section reader returned different content")

	empty(t, ingests(t, s), "a committed ingest must be gone")
}

func testEmptyBlob(t *testing.T, s content.Store) {
	ctx := t.Context()
	dgst := commit(t, s, "empty", nil)
	equal(t, digest.FromBytes(nil), dgst)
	info, err := s.Info(ctx, dgst)
	noErr(t, err)
	equal(t, int64(0), info.Size)
	got, err := s.ReadAll(ctx, dgst)
	noErr(t, err)
	empty(t, got)
}

func testInfo(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(4321)
	before := time.Now()
	dgst := commit(t, s, "info", data)
	after := time.Now()

	info, err := s.Info(ctx, dgst)
	noErr(t, err)
	equal(t, dgst, info.Digest)
	equal(t, int64(len(data)), info.Size)
	// Slack for filesystem timestamp granularity and clock coarseness.
	within(t, info.CreatedAt, before.Add(-2*time.Second), after.Add(2*time.Second))
}

func testNotFound(t *testing.T, s content.Store) {
	ctx := t.Context()
	absent := digest.FromString("absent")
	mustBeAbsent(t, s, absent)
	isErr(t, s.Delete(ctx, absent), errdefs.ErrNotFound)
	isErr(t, s.AbortIngest(ctx, "absent"), errdefs.ErrNotFound)
}

func testInvalidArgument(t *testing.T, s content.Store) {
	ctx := t.Context()
	for _, bad := range []digest.Digest{
		"nope",
		"sha256:xyz",
		"sha256:../../../../etc/passwd",
		"sha256:" + digest.Digest(bytes.Repeat([]byte("A"), 64)), // upper-case hex
		"md5:d41d8cd98f00b204e9800998ecf8427e",                   // unsupported
	} {
		_, err := s.Info(ctx, bad)
		isErr(t, err, errdefs.ErrInvalidArgument, "Info(%q)", bad)
		_, err = s.ReaderAt(ctx, bad)
		isErr(t, err, errdefs.ErrInvalidArgument, "ReaderAt(%q)", bad)
		_, err = s.ReadAll(ctx, bad)
		isErr(t, err, errdefs.ErrInvalidArgument, "ReadAll(%q)", bad)
		isErr(t, s.Delete(ctx, bad), errdefs.ErrInvalidArgument, "Delete(%q)", bad)
		_, err = s.Writer(ctx, "ref", bad, -1)
		isErr(t, err, errdefs.ErrInvalidArgument, "Writer(expected %q)", bad)
	}
	_, err := s.Writer(ctx, "", "", -1)
	isErr(t, err, errdefs.ErrInvalidArgument, "Writer with an empty ref")
	isErr(t, s.AbortIngest(ctx, ""), errdefs.ErrInvalidArgument, "AbortIngest with an empty ref")
}

func testPartialNotVisible(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(100_000)
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, "partial", dgst, int64(len(data)))
	noErr(t, err)
	writeAll(t, w, data[:len(data)/2])

	mustBeAbsent(t, s, dgst)
	empty(t, blobs(t, s))
	n, inodes, err := s.Usage(ctx)
	noErr(t, err)
	zero(t, n)
	zero(t, inodes)

	noErr(t, w.Close())
	mustBeAbsent(t, s, dgst)
	empty(t, blobs(t, s))
}

func testCommitWrongDigest(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(5000)
	actual := digest.FromBytes(data)
	wrong := digest.FromBytes(randomBytes(5000)) // same size: only the digest is wrong

	for _, tc := range []struct {
		name                string
		writerExpected      digest.Digest
		commitExpected      digest.Digest
		writerSize, comSize int64
	}{
		{"ExpectedAtWriter", wrong, wrong, 5000, 5000},
		{"ExpectedAtCommit", "", wrong, -1, 5000},
		// The expectation given to Writer is checked even when Commit is
		// given none.
		{"ExpectedAtWriterOnly", wrong, "", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := "wrong-digest-" + tc.name
			w, err := s.Writer(ctx, ref, tc.writerExpected, tc.writerSize)
			noErr(t, err)
			defer w.Close()
			writeAll(t, w, data)
			err = w.Commit(ctx, tc.comSize, tc.commitExpected)
			isErr(t, err, errdefs.ErrFailedPrecondition)
			errContains(t, err, wrong.String(), "the error names the expected digest")
			errContains(t, err, actual.String(), "the error names the actual digest")

			mustBeAbsent(t, s, wrong)
			mustBeAbsent(t, s, actual)
			empty(t, blobs(t, s))
			empty(t, ingests(t, s), "bad data must not stay as an ingest")

			// The ref starts over.
			w, err = s.Writer(ctx, ref, "", -1)
			noErr(t, err)
			zero(t, w.Offset())
			noErr(t, w.Abort())
		})
	}
}

func testCommitWrongSize(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(5000)
	dgst := digest.FromBytes(data)

	t.Run("AtCommit", func(t *testing.T) {
		w, err := s.Writer(ctx, "wrong-size-commit", dgst, -1)
		noErr(t, err)
		defer w.Close()
		writeAll(t, w, data)
		err = w.Commit(ctx, 5001, dgst)
		isErr(t, err, errdefs.ErrFailedPrecondition)
		errContains(t, err, "5001", "the error names the expected size")
		errContains(t, err, "5000", "the error names the actual size")
		mustBeAbsent(t, s, dgst)
		empty(t, ingests(t, s))
	})
	t.Run("AtWriter", func(t *testing.T) {
		w, err := s.Writer(ctx, "wrong-size-writer", "", 4999)
		noErr(t, err)
		defer w.Close()
		writeAll(t, w, data)
		err = w.Commit(ctx, -1, "")
		isErr(t, err, errdefs.ErrFailedPrecondition)
		mustBeAbsent(t, s, dgst)
		empty(t, ingests(t, s))
	})
	t.Run("ShortWrite", func(t *testing.T) {
		w, err := s.Writer(ctx, "wrong-size-short", dgst, int64(len(data)))
		noErr(t, err)
		defer w.Close()
		writeAll(t, w, data[:100])
		isErr(t, w.Commit(ctx, int64(len(data)), dgst), errdefs.ErrFailedPrecondition)
		mustBeAbsent(t, s, dgst)
		empty(t, ingests(t, s))
	})
	empty(t, blobs(t, s))
}

func testCommitWithoutExpected(t *testing.T, s content.Store) {
	ctx := t.Context()
	for i, size := range []int64{-1, 7777} {
		data := randomBytes(7777)
		w, err := s.Writer(ctx, fmt.Sprintf("no-expected-%d", i), "", -1)
		noErr(t, err)
		writeAll(t, w, data)
		equal(t, digest.FromBytes(data), w.Digest())
		noErr(t, w.Commit(ctx, size, ""))

		got, err := s.ReadAll(ctx, digest.FromBytes(data))
		noErr(t, err, "the blob is committed under its computed digest")
		isTrue(t, bytes.Equal(data, got))
	}
	hasLen(t, blobs(t, s), 2)
	empty(t, ingests(t, s))
}

func testResume(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(1 << 20)
	dgst := digest.FromBytes(data)
	size := int64(len(data))
	half, threeQ := len(data)/2+3, len(data)*3/4+1

	w, err := s.Writer(ctx, "resume", dgst, size)
	noErr(t, err)
	writeAll(t, w, data[:half])
	noErr(t, w.Close())

	st := ingests(t, s)
	hasLen(t, st, 1)
	equal(t, "resume", st[0].Ref)
	equal(t, int64(half), st[0].Offset)

	// Resuming without repeating the expectations is allowed.
	w, err = s.Writer(ctx, "resume", "", -1)
	noErr(t, err)
	equal(t, int64(half), w.Offset())
	equal(t, digest.FromBytes(data[:half]), w.Digest(), "the digest state is rebuilt on resume")
	writeAll(t, w, data[half:threeQ])
	noErr(t, w.Close())

	w, err = s.Writer(ctx, "resume", dgst, size)
	noErr(t, err)
	defer w.Close()
	equal(t, int64(threeQ), w.Offset())
	equal(t, digest.FromBytes(data[:threeQ]), w.Digest())
	writeAll(t, w, data[threeQ:])
	noErr(t, w.Commit(ctx, size, dgst))

	got, err := s.ReadAll(ctx, dgst)
	noErr(t, err)
	isTrue(t, bytes.Equal(data, got), "resumed blob has different content")
	empty(t, ingests(t, s))
}

func testResumeKeepsExpectations(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(10_000)
	dgst := digest.FromBytes(data)

	w, err := s.Writer(ctx, "keeps", dgst, int64(len(data)))
	noErr(t, err)
	writeAll(t, w, data[:5000])
	noErr(t, w.Close())

	st := ingests(t, s)
	hasLen(t, st, 1)
	equal(t, dgst, st[0].Expected)
	equal(t, int64(len(data)), st[0].Total)

	// A resume that knows nothing still has the recorded digest checked.
	w, err = s.Writer(ctx, "keeps", "", -1)
	noErr(t, err)
	defer w.Close()
	writeAll(t, w, randomBytes(5000))
	isErr(t, w.Commit(ctx, -1, ""), errdefs.ErrFailedPrecondition)
	empty(t, blobs(t, s))
	empty(t, ingests(t, s))
}

func testResumeMismatch(t *testing.T, s content.Store) {
	ctx := t.Context()
	d1 := digest.FromBytes(randomBytes(10))
	d2 := digest.FromBytes(randomBytes(10))

	w, err := s.Writer(ctx, "mismatch", d1, -1)
	noErr(t, err)
	_, err = w.Write([]byte("abc"))
	noErr(t, err)
	noErr(t, w.Close())

	_, err = s.Writer(ctx, "mismatch", d2, -1)
	isErr(t, err, errdefs.ErrFailedPrecondition, "resume with another expected digest")

	// A size learnt later is recorded, and then checked.
	w, err = s.Writer(ctx, "mismatch", d1, 10)
	noErr(t, err)
	equal(t, int64(3), w.Offset())
	noErr(t, w.Close())
	_, err = s.Writer(ctx, "mismatch", d1, 11)
	isErr(t, err, errdefs.ErrFailedPrecondition, "resume with another size")

	// The failed resumes left the ingest intact.
	st := ingests(t, s)
	hasLen(t, st, 1)
	equal(t, content.IngestStatus{
		Ref: "mismatch", Offset: 3, Total: 10, Expected: d1,
		StartedAt: st[0].StartedAt, UpdatedAt: st[0].UpdatedAt,
	}, st[0])

	// The way out is to abort and start over.
	noErr(t, s.AbortIngest(ctx, "mismatch"))
	w, err = s.Writer(ctx, "mismatch", d2, -1)
	noErr(t, err)
	zero(t, w.Offset())
	noErr(t, w.Abort())
}

func testResumeTruncate(t *testing.T, s content.Store) {
	tr, ok := s.(IngestTruncater)
	if !ok {
		t.Skip("store does not implement testsuite.IngestTruncater")
	}
	ctx := t.Context()
	const size = 300_000
	for _, cut := range []int64{0, 1, size/2 - 13, size*3/4 - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			data := randomBytes(size)
			dgst := digest.FromBytes(data)
			ref := fmt.Sprint("truncate-", cut)

			w, err := s.Writer(ctx, ref, dgst, size)
			noErr(t, err)
			writeAll(t, w, data[:size*3/4])
			noErr(t, w.Close())

			noErr(t, tr.TruncateIngest(ref, cut))

			w, err = s.Writer(ctx, ref, dgst, size)
			noErr(t, err)
			defer w.Close()
			equal(t, cut, w.Offset(), "resume continues where the data ends")
			equal(t, digest.FromBytes(data[:cut]), w.Digest())
			writeAll(t, w, data[cut:])
			noErr(t, w.Commit(ctx, size, dgst))

			got, err := s.ReadAll(ctx, dgst)
			noErr(t, err)
			isTrue(t, bytes.Equal(data, got))
		})
	}
	empty(t, ingests(t, s))
}

func testConcurrentWriters(t *testing.T, s content.Store) {
	ctx := t.Context()

	w1, err := s.Writer(ctx, "locked", "", -1)
	noErr(t, err)
	_, err = s.Writer(ctx, "locked", "", -1)
	isErr(t, err, errdefs.ErrUnavailable, "second writer on a held ref")
	isErr(t, s.AbortIngest(ctx, "locked"), errdefs.ErrUnavailable, "abort of a held ref")
	_, err = w1.Write([]byte("hello"))
	noErr(t, err)
	noErr(t, w1.Close())

	w2, err := s.Writer(ctx, "locked", "", -1)
	noErr(t, err, "the ref is free again once the writer is closed")
	equal(t, int64(5), w2.Offset())
	noErr(t, w2.Abort())

	// Racing writers: exactly one wins, the others fail fast. Winners
	// keep the ref until every attempt is done.
	data := randomBytes(50_000)
	dgst := digest.FromBytes(data)
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []content.Writer
		others  []error
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			w, err := s.Writer(ctx, "race", dgst, int64(len(data)))
			mu.Lock()
			if err == nil {
				winners = append(winners, w)
			} else {
				others = append(others, err)
			}
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	hasLen(t, winners, 1, "exactly one writer may hold a ref")
	for _, err := range others {
		isErr(t, err, errdefs.ErrUnavailable)
	}
	writeAll(t, winners[0], data)
	noErr(t, winners[0].Commit(ctx, int64(len(data)), dgst))
	equal(t, []digest.Digest{dgst}, blobs(t, s))
}

func testAlreadyExists(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(2000)
	dgst := commit(t, s, "exists", data)

	_, err := s.Writer(ctx, "exists-again", dgst, int64(len(data)))
	isErr(t, err, errdefs.ErrAlreadyExists)

	// Without an expected digest the store cannot know in advance; the
	// commit then succeeds without a second copy.
	for i, expected := range []digest.Digest{dgst, ""} {
		w, err := s.Writer(ctx, fmt.Sprint("exists-blind-", i), "", -1)
		noErr(t, err)
		writeAll(t, w, data)
		noErr(t, w.Commit(ctx, int64(len(data)), expected), "committing existing content is success")
	}
	equal(t, []digest.Digest{dgst}, blobs(t, s))
	empty(t, ingests(t, s))
	got, err := s.ReadAll(ctx, dgst)
	noErr(t, err)
	isTrue(t, bytes.Equal(data, got))
}

func testDelete(t *testing.T, s content.Store) {
	ctx := t.Context()
	a, b := randomBytes(100), randomBytes(200)
	da, db := commit(t, s, "a", a), commit(t, s, "b", b)

	noErr(t, s.Delete(ctx, da))
	mustBeAbsent(t, s, da)
	isErr(t, s.Delete(ctx, da), errdefs.ErrNotFound)
	_, err := s.Info(ctx, db)
	noErr(t, err, "deleting one blob leaves the others")
	equal(t, []digest.Digest{db}, blobs(t, s))

	// A deleted blob can be written again.
	equal(t, da, commit(t, s, "a", a))
	equal(t, sorted(da, db), blobs(t, s))
}

func testWalk(t *testing.T, s content.Store) {
	ctx := t.Context()
	empty(t, blobs(t, s))

	want := map[digest.Digest]int64{}
	for i := range 5 {
		data := randomBytes(100 * (i + 1))
		want[commit(t, s, fmt.Sprint("walk-", i), data)] = int64(len(data))
	}
	data := randomBytes(64)
	d512 := digest.SHA512.FromBytes(data)
	w, err := s.Writer(ctx, "walk-sha512", d512, 64)
	noErr(t, err)
	writeAll(t, w, data)
	noErr(t, w.Commit(ctx, 64, d512))
	want[d512] = 64

	// An ingest is not a blob.
	w, err = s.Writer(ctx, "walk-ingest", "", -1)
	noErr(t, err)
	defer w.Close()
	writeAll(t, w, randomBytes(10))

	got := map[digest.Digest]int64{}
	noErr(t, s.Walk(ctx, func(info content.Info) error {
		isFalse(t, info.CreatedAt.IsZero(), "CreatedAt of %s", info.Digest)
		got[info.Digest] = info.Size
		return nil
	}))
	equal(t, want, got)

	// An error from fn stops the walk and is returned.
	stop := errors.New("stop")
	calls := 0
	err = s.Walk(ctx, func(content.Info) error {
		calls++
		return stop
	})
	isErr(t, err, stop)
	equal(t, 1, calls)
}

func testIngests(t *testing.T, s content.Store) {
	ctx := t.Context()
	empty(t, ingests(t, s))

	da := digest.FromBytes(randomBytes(100))
	before := time.Now()
	wa, err := s.Writer(ctx, "ingest-a", da, 100)
	noErr(t, err)
	writeAll(t, wa, randomBytes(10))
	noErr(t, wa.Close())

	wb, err := s.Writer(ctx, "ingest-b", "", -1)
	noErr(t, err)
	defer wb.Close()
	writeAll(t, wb, randomBytes(20))

	st := ingests(t, s)
	hasLen(t, st, 2)
	for _, is := range st {
		within(t, is.StartedAt, before.Add(-2*time.Second), time.Now().Add(2*time.Second))
		isFalse(t, is.UpdatedAt.IsZero())
	}
	equal(t, "ingest-a", st[0].Ref)
	equal(t, int64(10), st[0].Offset)
	equal(t, int64(100), st[0].Total)
	equal(t, da, st[0].Expected)
	equal(t, "ingest-b", st[1].Ref)
	equal(t, int64(20), st[1].Offset, "an open writer's progress is listed")
	equal(t, int64(-1), st[1].Total)
	equal(t, digest.Digest(""), st[1].Expected)

	noErr(t, s.AbortIngest(ctx, "ingest-a"))
	isErr(t, s.AbortIngest(ctx, "ingest-a"), errdefs.ErrNotFound)
	isErr(t, s.AbortIngest(ctx, "ingest-b"), errdefs.ErrUnavailable, "held by wb")
	st = ingests(t, s)
	hasLen(t, st, 1)
	equal(t, "ingest-b", st[0].Ref)

	noErr(t, wb.Abort())
	empty(t, ingests(t, s))
	isErr(t, s.AbortIngest(ctx, "ingest-b"), errdefs.ErrNotFound)

	// An aborted ref starts from zero.
	wa, err = s.Writer(ctx, "ingest-a", da, 100)
	noErr(t, err)
	zero(t, wa.Offset())
	noErr(t, wa.Abort())
	empty(t, blobs(t, s))
}

func testConcurrentCommitsSameContent(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(256 << 10)
	dgst := digest.FromBytes(data)
	size := int64(len(data))

	// Open every writer first: once one has committed, opening with the
	// expected digest would (rightly) report ErrAlreadyExists instead.
	const n = 8
	writers := make([]content.Writer, n)
	for i := range writers {
		expected := dgst
		if i%2 == 1 {
			expected = "" // half discover the digest only at commit
		}
		w, err := s.Writer(ctx, fmt.Sprint("same-", i), expected, -1)
		noErr(t, err)
		writers[i] = w
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			defer w.Close()
			if _, err := w.Write(data); err != nil {
				errs[i] = err
				return
			}
			errs[i] = w.Commit(ctx, size, dgst)
		})
	}
	wg.Wait()
	for i, err := range errs {
		noErr(t, err, "writer %d", i)
	}
	equal(t, []digest.Digest{dgst}, blobs(t, s))
	empty(t, ingests(t, s))
	got, err := s.ReadAll(ctx, dgst)
	noErr(t, err)
	isTrue(t, bytes.Equal(data, got))
}

func testUsage(t *testing.T, s content.Store) {
	ctx := t.Context()
	usage := func() (int64, int64) {
		t.Helper()
		b, i, err := s.Usage(ctx)
		noErr(t, err)
		return b, i
	}
	b, i := usage()
	zero(t, b)
	zero(t, i)

	var digests []digest.Digest
	for _, size := range []int{10, 1000, 123_456} {
		digests = append(digests, commit(t, s, fmt.Sprint("usage-", size), randomBytes(size)))
	}
	// Ingests do not count.
	w, err := s.Writer(ctx, "usage-ingest", "", -1)
	noErr(t, err)
	defer w.Close()
	writeAll(t, w, randomBytes(500))

	b, i = usage()
	equal(t, int64(10+1000+123_456), b)
	equal(t, int64(3), i)

	noErr(t, s.Delete(ctx, digests[1]))
	b, i = usage()
	equal(t, int64(10+123_456), b)
	equal(t, int64(2), i)
}

func testSHA512(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(70_000)
	d512 := digest.SHA512.FromBytes(data)

	w, err := s.Writer(ctx, "sha512", d512, int64(len(data)))
	noErr(t, err)
	writeAll(t, w, data[:30_000])
	equal(t, digest.SHA512.FromBytes(data[:30_000]), w.Digest(), "Digest uses the expected digest's algorithm")
	noErr(t, w.Close())

	w, err = s.Writer(ctx, "sha512", d512, int64(len(data)))
	noErr(t, err)
	equal(t, digest.SHA512.FromBytes(data[:30_000]), w.Digest(), "resume rebuilds a sha512 state")
	writeAll(t, w, data[30_000:])
	noErr(t, w.Commit(ctx, int64(len(data)), d512))

	info, err := s.Info(ctx, d512)
	noErr(t, err)
	equal(t, int64(len(data)), info.Size)
	got, err := s.ReadAll(ctx, d512)
	noErr(t, err)
	isTrue(t, bytes.Equal(data, got))
	mustBeAbsent(t, s, digest.FromBytes(data))

	// A writer opened without a digest can commit under a sha512 one.
	data2 := randomBytes(1000)
	d2 := digest.SHA512.FromBytes(data2)
	w, err = s.Writer(ctx, "sha512-late", "", -1)
	noErr(t, err)
	writeAll(t, w, data2)
	noErr(t, w.Commit(ctx, -1, d2))
	_, err = s.Info(ctx, d2)
	noErr(t, err)

	// And a wrong sha512 digest is caught like a wrong sha256 one.
	w, err = s.Writer(ctx, "sha512-wrong", "", -1)
	noErr(t, err)
	writeAll(t, w, randomBytes(1000))
	isErr(t, w.Commit(ctx, -1, d2), errdefs.ErrFailedPrecondition)

	equal(t, sorted(d512, d2), blobs(t, s))
	empty(t, ingests(t, s))
}

func testWriterReleased(t *testing.T, s content.Store) {
	ctx := t.Context()
	data := randomBytes(100)
	dgst := digest.FromBytes(data)

	w, err := s.Writer(ctx, "released", dgst, 100)
	noErr(t, err)
	writeAll(t, w, data)
	noErr(t, w.Commit(ctx, 100, dgst))
	_, err = w.Write([]byte("more"))
	isError(t, err, "Write after Commit")
	isError(t, w.Commit(ctx, 100, dgst), "Commit after Commit")
	noErr(t, w.Close(), "Close after Commit is a no-op")
	noErr(t, w.Abort(), "Abort after Commit is a no-op")
	_, err = s.Info(ctx, dgst)
	noErr(t, err, "Abort after Commit must not remove the blob")

	w, err = s.Writer(ctx, "released-closed", "", -1)
	noErr(t, err)
	writeAll(t, w, data[:50])
	noErr(t, w.Close())
	noErr(t, w.Close(), "double Close")
	_, err = w.Write([]byte("more"))
	isError(t, err, "Write after Close")
	isError(t, w.Commit(ctx, -1, ""), "Commit after Close")
	noErr(t, w.Abort(), "Abort after Close is a no-op")
	st := ingests(t, s)
	hasLen(t, st, 1, "Abort after Close keeps the ingest")
	equal(t, int64(50), st[0].Offset)
}

func testCancelledContext(t *testing.T, s content.Store) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Writer(cancelled, "cancelled", "", -1)
	isErr(t, err, context.Canceled)

	ctx := t.Context()
	data := randomBytes(1000)
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, "cancelled", dgst, 1000)
	noErr(t, err)
	writeAll(t, w, data)
	isErr(t, w.Commit(cancelled, 1000, dgst), context.Canceled)
	mustBeAbsent(t, s, dgst)

	// The ingest survives for a later resume.
	w, err = s.Writer(ctx, "cancelled", dgst, 1000)
	noErr(t, err)
	equal(t, int64(1000), w.Offset())
	noErr(t, w.Commit(ctx, 1000, dgst))
	_, err = s.Info(ctx, dgst)
	noErr(t, err)
}

// Assertion helpers. They stop the test at the first failure (t.Fatalf):
// later checks usually depend on earlier ones. The optional trailing
// arguments are a format string and its arguments describing the check.

func describe(what []any) string {
	if len(what) == 0 {
		return ""
	}
	format, ok := what[0].(string)
	if !ok {
		return fmt.Sprint(what...) + ": "
	}
	return fmt.Sprintf(format, what[1:]...) + ": "
}

func noErr(t *testing.T, err error, what ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%sunexpected error: %v", describe(what), err)
	}
}

func isError(t *testing.T, err error, what ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("%sexpected an error, got nil", describe(what))
	}
}

func isErr(t *testing.T, err, target error, what ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%sgot error %v, want one wrapping %q", describe(what), err, target)
	}
}

func errContains(t *testing.T, err error, sub string, what ...any) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Fatalf("%serror %v does not contain %q", describe(what), err, sub)
	}
}

func equal(t *testing.T, want, got any, what ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%sgot %v, want %v", describe(what), got, want)
	}
}

func zero[T comparable](t *testing.T, got T, what ...any) {
	t.Helper()
	var z T
	if got != z {
		t.Fatalf("%sgot %v, want %v", describe(what), got, z)
	}
}

func empty[T any](t *testing.T, got []T, what ...any) {
	t.Helper()
	if len(got) != 0 {
		t.Fatalf("%sgot %v, want nothing", describe(what), got)
	}
}

func hasLen[T any](t *testing.T, got []T, n int, what ...any) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%sgot %d elements %v, want %d", describe(what), len(got), got, n)
	}
}

func isTrue(t *testing.T, cond bool, what ...any) {
	t.Helper()
	if !cond {
		t.Fatalf("%sgot false, want true", describe(what))
	}
}

func isFalse(t *testing.T, cond bool, what ...any) {
	t.Helper()
	if cond {
		t.Fatalf("%sgot true, want false", describe(what))
	}
}

func within(t *testing.T, got, from, to time.Time, what ...any) {
	t.Helper()
	if got.Before(from) || got.After(to) {
		t.Fatalf("%stime %v is not within [%v, %v]", describe(what), got, from, to)
	}
}
