package content

import (
	"context"
	// go-digest computes digests through crypto.Hash, which only works for
	// hashes linked into the binary; import them here so sha256, sha384
	// and sha512 digests work wherever this package is used.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// Directory names under the store root.
const (
	blobsDirName  = "blobs"
	ingestDirName = "ingest"
)

// Permissions. Committed blobs are read-only so that nothing (not even a
// buggy caller with a path) rewrites content under an existing digest.
// Ingests are private to the daemon: they may hold image content fetched
// with credentials that must not leak before the metadata layer decides
// who may see it.
const (
	rootPerm      = 0o711
	blobsDirPerm  = 0o755
	blobPerm      = 0o444
	ingestDirPerm = 0o700
	ingestPerm    = 0o600
)

// LocalStore is the filesystem Store. Its layout under the root is:
//
//	blobs/<alg>/<hex>        committed blobs, read-only (0444)
//	ingest/<sha256(ref)>/    one in-progress write, named by the hash of its
//	                         ref so that any ref string is a safe file name:
//	    data                 the bytes written so far
//	    ref                  the ref itself
//	    expected             the expected digest, or empty
//	    total                the expected size, or -1
//	    startedat            when the ingest was created (RFC 3339)
//
// Commit renames data into blobs/ after an fsync, so a blob is visible whole
// or not at all, and blobs/ never holds temporary files. Writers hold an
// exclusive flock(2) on their ingest's data file; it is what makes "one
// writer per ref" hold across LocalStore values and processes and lets
// CleanupIngests tell live ingests from leftovers.
//
// LocalStore needs a local filesystem with flock(2) and rename(2) semantics
// (not NFS).
type LocalStore struct {
	root string
}

var _ Store = (*LocalStore)(nil)

// NewStore opens the store at root, creating its directories as needed.
// Leftover ingests are kept (they may be resumed); call CleanupIngests to
// drop them.
func NewStore(root string) (*LocalStore, error) {
	if root == "" {
		return nil, fmt.Errorf("content: empty store root: %w", errdefs.ErrInvalidArgument)
	}
	s := &LocalStore{root: filepath.Clean(root)}
	if err := os.MkdirAll(s.root, rootPerm); err != nil {
		return nil, fmt.Errorf("content: create store: %w", err)
	}
	// blobs/sha256 is created up front because almost every blob uses it;
	// other algorithms get their directory at their first commit.
	if err := os.MkdirAll(filepath.Join(s.root, blobsDirName, string(digest.Canonical)), blobsDirPerm); err != nil {
		return nil, fmt.Errorf("content: create store: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.root, ingestDirName), ingestDirPerm); err != nil {
		return nil, fmt.Errorf("content: create store: %w", err)
	}
	return s, nil
}

// Root returns the store's root directory.
func (s *LocalStore) Root() string { return s.root }

// Info implements Store.
func (s *LocalStore) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return Info{}, blobErr(dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// ReaderAt implements Store.
func (s *LocalStore) ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blobErr(dgst, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobErr(dgst, err)
	}
	return &fileReaderAt{f: f, size: fi.Size()}, nil
}

// ReadAll implements Store.
func (s *LocalStore) ReadAll(ctx context.Context, dgst digest.Digest) ([]byte, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, blobErr(dgst, err)
	}
	return b, nil
}

// Delete implements Store. The directory is not fsynced: if a crash undoes
// the delete, the blob is still valid content and GC removes it again.
func (s *LocalStore) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return blobErr(dgst, err)
	}
	return nil
}

// Walk implements Store. Blobs are visited by algorithm, then by encoded
// digest. Files under blobs/ that are not named like a digest of a supported
// algorithm are skipped, not reported.
func (s *LocalStore) Walk(ctx context.Context, fn func(Info) error) error {
	blobs := filepath.Join(s.root, blobsDirName)
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("content: walk: %w", err)
	}
	for _, a := range algs {
		alg := digest.Algorithm(a.Name())
		if !a.IsDir() || !alg.Available() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(blobs, a.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("content: walk: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, e.Name())
			if !e.Type().IsRegular() || dgst.Validate() != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted since ReadDir
				}
				return fmt.Errorf("content: walk: %w", err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Usage implements Store. bytes is the sum of the blobs' sizes, not their
// allocated blocks: it is what the blobs weigh independently of the
// filesystem's block size, compression or inline data, and it is stable
// enough to compare across implementations.
func (s *LocalStore) Usage(ctx context.Context) (bytes, inodes int64, err error) {
	err = s.Walk(ctx, func(info Info) error {
		bytes += info.Size
		inodes++
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return bytes, inodes, nil
}

// blobPath returns where the blob dgst lives. It validates dgst first, which
// also guarantees the path stays under blobs/ (the encoded part is hex).
func (s *LocalStore) blobPath(dgst digest.Digest) (string, error) {
	if err := validateDigest(dgst); err != nil {
		return "", err
	}
	return filepath.Join(s.root, blobsDirName, string(dgst.Algorithm()), dgst.Encoded()), nil
}

// validateDigest rejects malformed digests and algorithms go-digest cannot
// compute, as ErrInvalidArgument.
func validateDigest(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("content: digest %q: %v: %w", dgst, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// blobErr maps a filesystem error about the blob dgst to an errdefs error.
func blobErr(dgst digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content: blob %s: %w", dgst, errdefs.ErrNotFound)
	}
	return fmt.Errorf("content: blob %s: %w", dgst, err)
}

// fileReaderAt is a ReaderAt over a committed blob file. It wraps the
// *os.File rather than embedding it so callers cannot reach Write or Chmod.
type fileReaderAt struct {
	f    *os.File
	size int64
}

func (r *fileReaderAt) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }
func (r *fileReaderAt) Close() error                            { return r.f.Close() }
func (r *fileReaderAt) Size() int64                             { return r.size }
