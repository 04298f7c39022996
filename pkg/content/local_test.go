package content_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/cri-rt/cri-rt/pkg/content"
	"github.com/cri-rt/cri-rt/pkg/content/testsuite"
)

// truncatingStore adds testsuite.IngestTruncater to a LocalStore by
// cutting the data file directly, as a crash after unsynced writes would.
type truncatingStore struct {
	*content.LocalStore
}

func (s truncatingStore) TruncateIngest(ref string, size int64) error {
	return os.Truncate(filepath.Join(ingestDir(s.Root(), ref), "data"), size)
}

func TestLocalStore(t *testing.T) {
	testsuite.Run(t, "LocalStore", func(t *testing.T) content.Store {
		return truncatingStore{newStore(t)}
	})
}

func newStore(t testing.TB) *content.LocalStore {
	t.Helper()
	s, err := content.NewStore(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ingestDir is where the documented layout puts the ingest ref.
func ingestDir(root, ref string) string {
	return filepath.Join(root, "ingest", digest.SHA256.FromString(ref).Encoded())
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// commit stores data under ref and returns its digest.
func commit(t testing.TB, s content.Store, ref string, data []byte) digest.Digest {
	t.Helper()
	ctx := t.Context()
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, ref, dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst); err != nil {
		t.Fatal(err)
	}
	return dgst
}

// openIngest starts the ingest ref with data written to it and returns
// the still-open writer.
func openIngest(t *testing.T, s content.Store, ref string, expected digest.Digest, data []byte) content.Writer {
	t.Helper()
	w, err := s.Writer(t.Context(), ref, expected, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestLayout(t *testing.T) {
	s := newStore(t)
	data := randomBytes(t, 1000)
	dgst := digest.FromBytes(data)

	w := openIngest(t, s, "layout/ref:with spaces", dgst, data[:400])
	dir := ingestDir(s.Root(), "layout/ref:with spaces")
	for name, want := range map[string]string{
		"data":     string(data[:400]),
		"ref":      "layout/ref:with spaces",
		"expected": dgst.String(),
		"total":    "-1",
	} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("ingest file %s = %.40q, %v; want %.40q", name, got, err, want)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "startedat"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339Nano, string(b)); err != nil {
		t.Errorf("startedat: %v", err)
	}

	if _, err := w.Write(data[400:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context(), 1000, dgst); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(s.Root(), "blobs", "sha256", dgst.Encoded())
	fi, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode = %v, want read-only 0444", fi.Mode().Perm())
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ingest directory left after commit: %v", err)
	}
}

// TestNoTempFilesInBlobs drives successful, failed and duplicate commits and
// pending ingests and then checks that blobs/ holds only the committed
// blobs: nothing is ever staged there.
func TestNoTempFilesInBlobs(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	data := randomBytes(t, 5000)
	dgst := commit(t, s, "ok", data)
	commit(t, s, "empty", nil)

	w := openIngest(t, s, "dup", "", data)
	if err := w.Commit(ctx, -1, dgst); err != nil {
		t.Fatal(err)
	}
	w = openIngest(t, s, "bad", "", randomBytes(t, 10))
	if err := w.Commit(ctx, -1, dgst); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("bad commit: %v", err)
	}
	w = openIngest(t, s, "pending", "", randomBytes(t, 10))
	defer w.Close()

	want := map[string]bool{
		filepath.Join("sha256", dgst.Encoded()):                  true,
		filepath.Join("sha256", digest.FromBytes(nil).Encoded()): true,
		"sha256": true,
	}
	root := filepath.Join(s.Root(), "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !want[rel] {
			t.Errorf("unexpected entry in blobs/: %s", rel)
		}
		delete(want, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 0 {
		t.Errorf("missing from blobs/: %v", want)
	}
}

func TestCleanupIngests(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	ingestRoot := filepath.Join(s.Root(), "ingest")

	for _, ref := range []string{"old-1", "old-2", "fresh"} {
		if err := openIngest(t, s, ref, "", randomBytes(t, 100)).Close(); err != nil {
			t.Fatal(err)
		}
	}
	live := openIngest(t, s, "live", "", randomBytes(t, 100))
	defer live.Close()
	// Leftovers of crashes: an ingest directory whose setup never got to
	// the data file, and a stray file.
	if err := os.Mkdir(filepath.Join(ingestRoot, "half-created"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ingestRoot, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Age everything but "fresh" and "live".
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{
		ingestDir(s.Root(), "old-1"), filepath.Join(ingestDir(s.Root(), "old-1"), "data"),
		ingestDir(s.Root(), "old-2"), filepath.Join(ingestDir(s.Root(), "old-2"), "data"),
		filepath.Join(ingestRoot, "half-created"),
	} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	removed, err := s.CleanupIngests(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 4 {
		t.Errorf("CleanupIngests(1h) removed %d, want 4 (old-1, old-2, half-created, stray)", removed)
	}
	if got := refs(t, s); got != "fresh,live" {
		t.Errorf("ingests after CleanupIngests(1h) = %s, want fresh,live", got)
	}

	// 0 removes everything but what a writer holds.
	removed, err = s.CleanupIngests(0)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 1 {
		t.Errorf("CleanupIngests(0) removed %d, want 1 (fresh)", removed)
	}
	if got := refs(t, s); got != "live" {
		t.Errorf("ingests after CleanupIngests(0) = %s, want live", got)
	}
	// The live writer is unaffected.
	data := randomBytes(t, 10)
	if _, err := live.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := live.Commit(ctx, 110, ""); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(ingestRoot); len(entries) != 0 {
		t.Errorf("ingest/ not empty: %v", entries)
	}
}

func refs(t *testing.T, s content.Store) string {
	t.Helper()
	st, err := s.Ingests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, is := range st {
		out = append(out, is.Ref)
	}
	return strings.Join(out, ",")
}

// TestResumeRehashesData shows that a resume trusts nothing but the bytes
// on disk: corruption of already-written data is caught at commit.
func TestResumeRehashesData(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	data := randomBytes(t, 10_000)
	dgst := digest.FromBytes(data)
	if err := openIngest(t, s, "corrupt", dgst, data[:6000]).Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(ingestDir(s.Root(), "corrupt"), "data"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[100] ^ 0xff}, 100); err != nil {
		t.Fatal(err)
	}
	f.Close()

	w, err := s.Writer(ctx, "corrupt", dgst, -1)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 6000 || w.Digest() == digest.FromBytes(data[:6000]) {
		t.Fatalf("resume: offset %d digest %s; want 6000 and the digest of the corrupted bytes", w.Offset(), w.Digest())
	}
	if _, err := w.Write(data[6000:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("commit of corrupted data: %v, want ErrFailedPrecondition", err)
	}
	if _, err := s.Info(ctx, dgst); !errdefs.IsNotFound(err) {
		t.Fatalf("Info after failed commit: %v", err)
	}
}

// TestResumeIncompleteIngest covers a crash during ingest setup: without
// its ref file an ingest's data is not trusted and the write starts over.
func TestResumeIncompleteIngest(t *testing.T) {
	s := newStore(t)
	if err := openIngest(t, s, "incomplete", "", randomBytes(t, 500)).Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ingestDir(s.Root(), "incomplete"), "ref")); err != nil {
		t.Fatal(err)
	}
	if got := refs(t, s); got != "" {
		t.Errorf("an incomplete ingest is listed: %s", got)
	}
	w, err := s.Writer(t.Context(), "incomplete", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Errorf("resumed incomplete ingest at %d, want 0", w.Offset())
	}
}

// TestTwoStoresOneRoot checks that blobs and ingests persist across
// LocalStore values, and that the one-writer-per-ref lock holds across
// them (it is a flock on the data file, not in-memory state).
func TestTwoStoresOneRoot(t *testing.T) {
	a := newStore(t)
	b, err := content.NewStore(a.Root())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := randomBytes(t, 2000)
	dgst := commit(t, a, "shared", data)
	if _, err := b.Info(ctx, dgst); err != nil {
		t.Fatalf("blob committed by a is not visible to b: %v", err)
	}

	w := openIngest(t, a, "held", "", data[:100])
	if _, err := b.Writer(ctx, "held", "", -1); !errdefs.IsUnavailable(err) {
		t.Fatalf("second store opened a held ref: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = b.Writer(ctx, "held", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 100 {
		t.Errorf("b resumed at %d, want 100", w.Offset())
	}
}

// TestReaderSurvivesDelete relies on POSIX unlink semantics: an open blob
// stays readable, whole, after Delete.
func TestReaderSurvivesDelete(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	data := randomBytes(t, 100_000)
	dgst := commit(t, s, "r", data)
	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if err := s.Delete(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after delete: %d bytes, %v", len(got), err)
	}
}

func TestNewStoreEmptyRoot(t *testing.T) {
	if _, err := content.NewStore(""); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("NewStore(\"\") = %v, want ErrInvalidArgument", err)
	}
}

// BenchmarkWrite64MiB measures the write path of a layer-sized blob:
// hashing, page-cache writes, one fsync and the rename, in 1 MiB writes as
// a registry download would deliver them.
func BenchmarkWrite64MiB(b *testing.B) {
	const size = 64 << 20
	s := newStore(b)
	data := randomBytes(b, size)
	dgst := digest.FromBytes(data)
	ctx := b.Context()
	b.SetBytes(size)
	for b.Loop() {
		w, err := s.Writer(ctx, "bench", dgst, size)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += 1 << 20 {
			if _, err := w.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Commit(ctx, size, dgst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, dgst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
