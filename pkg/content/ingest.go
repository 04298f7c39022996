package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Files in an ingest directory. refFile is written last when an ingest is
// created: an ingest without it was interrupted while being set up and is
// started over.
const (
	dataFile      = "data"
	refFile       = "ref"
	expectedFile  = "expected"
	totalFile     = "total"
	startedAtFile = "startedat"
)

// rehashBufferSize is the read size used to rebuild the digest of a resumed
// ingest: large reads keep re-hashing a big partial layer close to disk
// speed.
const rehashBufferSize = 1 << 20

// lockAttempts bounds the retries of lockIngest when the ingest is being
// replaced under it; past that it reports the ingest as busy.
const lockAttempts = 10

// ingestMeta is what an ingest directory records besides its data.
type ingestMeta struct {
	ref       string
	expected  digest.Digest
	total     int64
	startedAt time.Time
}

// Writer implements Store.
func (s *LocalStore) Writer(ctx context.Context, ref string, expected digest.Digest, size int64) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, fmt.Errorf("content: empty ingest ref: %w", errdefs.ErrInvalidArgument)
	}
	if expected != "" {
		if _, err := s.Info(ctx, expected); err == nil {
			return nil, fmt.Errorf("content: blob %s: %w", expected, errdefs.ErrAlreadyExists)
		} else if !errdefs.IsNotFound(err) {
			return nil, err // also rejects a malformed expected digest
		}
	}
	if size < 0 {
		size = -1
	}
	dir := s.ingestPath(ref)
	f, err := lockIngest(dir, true)
	if err != nil {
		return nil, fmt.Errorf("content: ingest %q: %w", ref, err)
	}
	w, err := s.openIngest(f, dir, ref, expected, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// openIngest sets up a new ingest, or checks and resumes an existing one,
// in dir whose data file f is locked.
func (s *LocalStore) openIngest(f *os.File, dir, ref string, expected digest.Digest, size int64) (*localWriter, error) {
	meta, ok := readIngestMeta(dir)
	switch {
	case !ok:
		// New, or set up only partly before a crash: whatever data there
		// is cannot be trusted without its metadata, so start over.
		if err := f.Truncate(0); err != nil {
			return nil, fmt.Errorf("content: ingest %q: %w", ref, err)
		}
		meta = ingestMeta{ref: ref, expected: expected, total: size, startedAt: time.Now()}
		if err := writeIngestMeta(dir, meta); err != nil {
			return nil, fmt.Errorf("content: ingest %q: %w", ref, err)
		}
	case meta.ref != ref:
		// Only a sha256 collision or a hand-edited store gets here.
		return nil, fmt.Errorf("content: ingest %q: directory %s belongs to ref %q: %w",
			ref, dir, meta.ref, errdefs.ErrFailedPrecondition)
	default:
		if expected != "" && meta.expected != "" && expected != meta.expected {
			return nil, fmt.Errorf("content: ingest %q: resumed with expected digest %s, but it was started for %s: %w",
				ref, expected, meta.expected, errdefs.ErrFailedPrecondition)
		}
		if size >= 0 && meta.total >= 0 && size != meta.total {
			return nil, fmt.Errorf("content: ingest %q: resumed with size %d, but it was started for size %d: %w",
				ref, size, meta.total, errdefs.ErrFailedPrecondition)
		}
		// Expectations learnt since the ingest started are recorded so
		// that a later resume without them still gets them checked.
		if meta.expected == "" && expected != "" {
			meta.expected = expected
			if err := writeFileAtomic(filepath.Join(dir, expectedFile), []byte(expected)); err != nil {
				return nil, fmt.Errorf("content: ingest %q: %w", ref, err)
			}
		}
		if meta.total < 0 && size >= 0 {
			meta.total = size
			if err := writeFileAtomic(filepath.Join(dir, totalFile), []byte(strconv.FormatInt(size, 10))); err != nil {
				return nil, fmt.Errorf("content: ingest %q: %w", ref, err)
			}
		}
	}

	alg := digest.Canonical
	if meta.expected != "" {
		alg = meta.expected.Algorithm()
	}
	// The digest state is not persisted (hash states are not portable and
	// would go stale if data were truncated by a crash), so rebuild it from
	// the bytes on disk. This also leaves f's offset at the end of data.
	d := alg.Digester()
	n, err := io.CopyBuffer(d.Hash(), readerOnly{f}, make([]byte, rehashBufferSize))
	if err != nil {
		return nil, fmt.Errorf("content: ingest %q: rehash: %w", ref, err)
	}
	return &localWriter{
		s:        s,
		ref:      ref,
		dir:      dir,
		f:        f,
		digester: d,
		offset:   n,
		expected: meta.expected,
		total:    meta.total,
	}, nil
}

// Ingests implements Store. Ingests are sorted by ref.
func (s *LocalStore) Ingests(ctx context.Context) ([]IngestStatus, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, ingestDirName))
	if err != nil {
		return nil, fmt.Errorf("content: list ingests: %w", err)
	}
	var out []IngestStatus
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := filepath.Join(s.root, ingestDirName, e.Name())
		meta, ok := readIngestMeta(dir)
		if !ok {
			continue // being set up, or a leftover for CleanupIngests
		}
		fi, err := os.Stat(filepath.Join(dir, dataFile))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // committed or aborted since ReadDir
			}
			return nil, fmt.Errorf("content: list ingests: %w", err)
		}
		out = append(out, IngestStatus{
			Ref:       meta.ref,
			Offset:    fi.Size(),
			Total:     meta.total,
			Expected:  meta.expected,
			StartedAt: meta.startedAt,
			UpdatedAt: fi.ModTime(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// AbortIngest implements Store.
func (s *LocalStore) AbortIngest(ctx context.Context, ref string) error {
	if ref == "" {
		return fmt.Errorf("content: empty ingest ref: %w", errdefs.ErrInvalidArgument)
	}
	dir := s.ingestPath(ref)
	f, err := lockIngest(dir, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content: ingest %q: %w", ref, errdefs.ErrNotFound)
		}
		return fmt.Errorf("content: ingest %q: %w", ref, err)
	}
	defer f.Close() // after RemoveAll: the lock keeps writers out meanwhile
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("content: abort ingest %q: %w", ref, err)
	}
	return nil
}

// CleanupIngests removes ingests that no writer holds and that saw no
// activity (creation, metadata or data write) for olderThan; olderThan 0
// removes every ingest not held by a writer. The daemon calls it at start,
// when nothing can be held, to drop what interrupted pulls left behind.
// Stray files and half-created ingests count as removed ingests too.
func (s *LocalStore) CleanupIngests(olderThan time.Duration) (removed int, err error) {
	root := filepath.Join(s.root, ingestDirName)
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("content: cleanup ingests: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		if !e.IsDir() {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("content: cleanup ingests: %w", err)
			}
			removed++
			continue
		}
		if olderThan > 0 && lastActivity(p).After(cutoff) {
			continue
		}
		f, err := lockIngest(p, false)
		if err != nil {
			if errdefs.IsUnavailable(err) || errors.Is(err, fs.ErrNotExist) {
				continue // held by a live writer, or gone meanwhile
			}
			return removed, fmt.Errorf("content: cleanup ingests: %w", err)
		}
		err = os.RemoveAll(p)
		f.Close()
		if err != nil {
			return removed, fmt.Errorf("content: cleanup ingests: %w", err)
		}
		removed++
	}
	return removed, nil
}

// ingestPath returns the directory of the ingest ref.
func (s *LocalStore) ingestPath(ref string) string {
	return filepath.Join(s.root, ingestDirName, digest.SHA256.FromString(ref).Encoded())
}

// localWriter is LocalStore's Writer. Its mutex makes Close/Abort safe to
// call from another goroutine (e.g. on cancellation) while a Write runs.
type localWriter struct {
	s   *LocalStore
	ref string
	dir string

	mu       sync.Mutex
	f        *os.File // the locked data file; nil once released
	digester digest.Digester
	offset   int64
	expected digest.Digest // as recorded with the ingest, or ""
	total    int64         // as recorded with the ingest, or -1
}

// Write implements io.Writer. It does not sync: one fsync at Commit makes
// the whole blob durable at a fraction of the cost.
func (w *localWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, w.released()
	}
	n, err := w.f.Write(p)
	// Hash what reached the file even on a short write, so Digest and
	// Offset keep describing the data file exactly.
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		return n, fmt.Errorf("content: ingest %q: %w", w.ref, err)
	}
	return n, nil
}

// Offset implements Writer.
func (w *localWriter) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.offset
}

// Digest implements Writer.
func (w *localWriter) Digest() digest.Digest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.digester.Digest()
}

// Commit implements Writer.
func (w *localWriter) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.released()
	}
	f := w.f
	w.f = nil
	// Deferred first so it runs last: the lock must be held until the
	// ingest directory is gone, or a new writer could grab the old data.
	defer f.Close()

	if err := ctx.Err(); err != nil {
		return err
	}
	if expected != "" {
		if err := validateDigest(expected); err != nil {
			return err
		}
	}
	dgst, err := w.verify(f, size, expected)
	if err != nil {
		if errdefs.IsFailedPrecondition(err) {
			// The data is known bad: resuming it could only fail again.
			os.RemoveAll(w.dir)
		}
		return err
	}

	target, err := w.s.blobPath(dgst)
	if err != nil {
		return err
	}
	data := filepath.Join(w.dir, dataFile)
	// Set CreatedAt (the mtime) to the commit time rather than the last
	// write, which for a resumed ingest can be long ago and would cut GC's
	// grace period short. Make the file read-only before it becomes
	// visible, then one fsync persists data, mode and times together.
	now := time.Now()
	if err := os.Chtimes(data, now, now); err != nil {
		return fmt.Errorf("content: commit %q: %w", w.ref, err)
	}
	if err := f.Chmod(blobPerm); err != nil {
		return fmt.Errorf("content: commit %q: %w", w.ref, err)
	}
	if err := w.publish(f, data, target); err != nil {
		// Keep the ingest resumable: a resume opens data read-write.
		f.Chmod(ingestPerm)
		return fmt.Errorf("content: commit %q as %s: %w", w.ref, dgst, err)
	}
	// The blob is durable; a leftover ingest directory would only be
	// clutter for CleanupIngests, so its removal cannot fail the commit.
	os.RemoveAll(w.dir)
	return nil
}

// publish fsyncs f and renames its path data to target, then fsyncs
// target's directory so the rename itself survives a crash. A blob that
// already exists at target is success: it has the same digest, hence the
// same content.
func (w *localWriter) publish(f *os.File, data, target string) error {
	if err := f.Sync(); err != nil {
		return err
	}
	dir := filepath.Dir(target)
	if err := ensureDir(dir); err != nil {
		return err
	}
	if err := renameNoReplace(data, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(dir)
}

// verify checks the data written against size and expected and against
// the ingest's recorded expectations, and returns the digest to commit
// under.
func (w *localWriter) verify(f *os.File, size int64, expected digest.Digest) (digest.Digest, error) {
	for _, want := range []int64{size, w.total} {
		if want >= 0 && want != w.offset {
			return "", fmt.Errorf("content: commit %q: size mismatch: expected %d bytes, got %d bytes (digest %s): %w",
				w.ref, want, w.offset, w.digester.Digest(), errdefs.ErrFailedPrecondition)
		}
	}
	computed := w.digester.Digest()
	dgst := computed
	for _, want := range []digest.Digest{w.expected, expected} {
		if want == "" {
			continue
		}
		got := computed
		if want.Algorithm() != computed.Algorithm() {
			// Commit asked for another algorithm than the one hashed
			// while writing: hash the data again with it.
			var err error
			got, err = want.Algorithm().FromReader(io.NewSectionReader(f, 0, w.offset))
			if err != nil {
				return "", fmt.Errorf("content: commit %q: rehash: %w", w.ref, err)
			}
		}
		if got != want {
			return "", fmt.Errorf("content: commit %q: digest mismatch: expected %s, got %s (%d bytes): %w",
				w.ref, want, got, w.offset, errdefs.ErrFailedPrecondition)
		}
		dgst = want
	}
	return dgst, nil
}

// Close implements Writer.
func (w *localWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Abort implements Writer.
func (w *localWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := os.RemoveAll(w.dir)
	w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("content: abort ingest %q: %w", w.ref, err)
	}
	return nil
}

func (w *localWriter) released() error {
	return fmt.Errorf("content: writer for ingest %q is released: %w", w.ref, errdefs.ErrFailedPrecondition)
}

// lockIngest opens the data file of the ingest in dir, creating the file
// (and dir itself if mkdir), and takes an exclusive flock on it without
// blocking. A held lock is ErrUnavailable; a missing dir (with !mkdir) is
// fs.ErrNotExist.
//
// The lock is only meaningful on the file currently at dir/data: if the
// ingest was committed, aborted or cleaned up between the open and the
// flock, the lock was taken on an unlinked file, so check and retry.
func lockIngest(dir string, mkdir bool) (*os.File, error) {
	path := filepath.Join(dir, dataFile)
	for range lockAttempts {
		if mkdir {
			if err := os.MkdirAll(dir, ingestDirPerm); err != nil {
				return nil, err
			}
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, ingestPerm)
		if err != nil {
			if mkdir && errors.Is(err, fs.ErrNotExist) {
				continue // dir removed since MkdirAll
			}
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("held by another writer: %w", errdefs.ErrUnavailable)
			}
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if cur, err := os.Lstat(path); err == nil && os.SameFile(fi, cur) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("changing concurrently: %w", errdefs.ErrUnavailable)
}

// readIngestMeta reads the metadata of the ingest in dir. ok is false when
// it is missing or malformed.
func readIngestMeta(dir string) (meta ingestMeta, ok bool) {
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return string(b), err == nil
	}
	ref, ok1 := read(refFile)
	expected, ok2 := read(expectedFile)
	total, ok3 := read(totalFile)
	startedAt, ok4 := read(startedAtFile)
	if !ok1 || !ok2 || !ok3 || !ok4 || ref == "" {
		return ingestMeta{}, false
	}
	meta.ref = ref
	meta.expected = digest.Digest(strings.TrimSpace(expected))
	if meta.expected != "" && meta.expected.Validate() != nil {
		return ingestMeta{}, false
	}
	var err error
	if meta.total, err = strconv.ParseInt(strings.TrimSpace(total), 10, 64); err != nil {
		return ingestMeta{}, false
	}
	if meta.startedAt, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(startedAt)); err != nil {
		return ingestMeta{}, false
	}
	return meta, true
}

// writeIngestMeta records meta in dir, ref last (see refFile).
func writeIngestMeta(dir string, meta ingestMeta) error {
	files := []struct{ name, value string }{
		{expectedFile, string(meta.expected)},
		{totalFile, strconv.FormatInt(meta.total, 10)},
		{startedAtFile, meta.startedAt.UTC().Format(time.RFC3339Nano)},
		{refFile, meta.ref},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), []byte(f.value)); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with b through a rename, so a reader (or a
// crash) sees the old or the new content, never a torn mix. It does not
// fsync: losing ingest metadata in a crash only restarts that download.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, ingestPerm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lastActivity returns the latest modification time of the ingest in dir:
// of the directory (entries created or replaced) and of its data.
func lastActivity(dir string) time.Time {
	var t time.Time
	for _, p := range []string{dir, filepath.Join(dir, dataFile)} {
		if fi, err := os.Lstat(p); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// renameNoReplace renames oldpath to newpath, failing with EEXIST if
// newpath exists: a blob, once committed, is never replaced under a reader.
// Filesystems without RENAME_NOREPLACE get a check-then-rename, whose race
// can only replace a blob with identical content.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		// RENAME_NOREPLACE unsupported here: fall back below.
	default:
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: unix.EEXIST}
	}
	return os.Rename(oldpath, newpath)
}

// ensureDir creates dir if missing and then fsyncs its parent, so that a
// blob renamed into a new algorithm directory cannot lose the directory
// itself in a crash.
func ensureDir(dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, blobsDirPerm); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir fsyncs a directory, making renames into it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readerOnly hides the WriterTo of *os.File so io.CopyBuffer uses the
// caller's (large) buffer instead of a 32 KiB one.
type readerOnly struct{ io.Reader }
