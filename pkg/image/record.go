package image

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Record is one image: a config digest (its ID) with the names that point
// at it and what is needed to build a rootfs from it.
type Record struct {
	ID          digest.Digest      `json:"id"` // config digest
	RepoTags    []string           `json:"repoTags,omitempty"`
	RepoDigests []string           `json:"repoDigests,omitempty"`
	Target      ocispec.Descriptor `json:"target"`   // what a repo digest names: index or manifest
	Manifest    digest.Digest      `json:"manifest"` // this platform's manifest
	Layers      []LayerRef         `json:"layers"`
	Size        int64              `json:"size"` // bytes of the unpacked layers
	User        string             `json:"user,omitempty"`
	Annotations map[string]string  `json:"annotations,omitempty"`
	CreatedAt   time.Time          `json:"createdAt"`
}

// LayerRef is one layer of an image.
type LayerRef struct {
	ChainID digest.Digest `json:"chainID"`
	DiffID  digest.Digest `json:"diffID"`
	Blob    digest.Digest `json:"blob"`
	Size    int64         `json:"size"` // compressed
}

// TopLayer is the chain ID of the image's top layer ("" for an image without layers).
func (r *Record) TopLayer() digest.Digest {
	if len(r.Layers) == 0 {
		return ""
	}
	return r.Layers[len(r.Layers)-1].ChainID
}

func (r *Record) names() []string { return append(append([]string{}, r.RepoTags...), r.RepoDigests...) }

var (
	bucketImages = []byte("images")
	bucketByID   = []byte("byid")
	bucketNames  = []byte("names")
)

// records is the bbolt-backed image metadata.
type records struct{ db *bolt.DB }

func newRecords(db *bolt.DB) (*records, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketImages)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(bucketByID); err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists(bucketNames)
		return err
	})
	return &records{db: db}, err
}

func byID(tx *bolt.Tx) *bolt.Bucket   { return tx.Bucket(bucketImages).Bucket(bucketByID) }
func byName(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketImages).Bucket(bucketNames) }

func getRecord(tx *bolt.Tx, id digest.Digest) (*Record, error) {
	v := byID(tx).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("image record %s: %w", id, err)
	}
	return &r, nil
}

func putRecord(tx *bolt.Tx, r *Record) error {
	sort.Strings(r.RepoTags)
	sort.Strings(r.RepoDigests)
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return byID(tx).Put([]byte(r.ID), v)
}

// deleteRecord removes an image and all its names.
func deleteRecord(tx *bolt.Tx, r *Record) error {
	for _, n := range r.names() {
		if string(byName(tx).Get([]byte(n))) == string(r.ID) {
			if err := byName(tx).Delete([]byte(n)); err != nil {
				return err
			}
		}
	}
	return byID(tx).Delete([]byte(r.ID))
}

// upsert records a pulled image under its names. A tag that pointed at
// another image moves here; that image keeps its other names, and goes if
// it has no tag left (as if the tag had been removed).
func (s *records) upsert(in *Record, tag, digestName string) (*Record, error) {
	var out *Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getRecord(tx, in.ID)
		if errdefs.IsNotFound(err) {
			rec, err = in, nil
			rec.RepoTags, rec.RepoDigests = nil, nil
		}
		if err != nil {
			return err
		}
		// The newest pull's view of layers and target wins.
		rec.Target, rec.Manifest, rec.Layers, rec.Size, rec.User, rec.Annotations = in.Target, in.Manifest, in.Layers, in.Size, in.User, in.Annotations
		for _, n := range []string{tag, digestName} {
			if n == "" {
				continue
			}
			if prev := digest.Digest(byName(tx).Get([]byte(n))); prev != "" && prev != rec.ID {
				if err := untag(tx, prev, n); err != nil {
					return err
				}
			}
			if err := byName(tx).Put([]byte(n), []byte(rec.ID)); err != nil {
				return err
			}
			if n == tag {
				rec.RepoTags = appendUnique(rec.RepoTags, n)
			} else {
				rec.RepoDigests = appendUnique(rec.RepoDigests, n)
			}
		}
		out = rec
		return putRecord(tx, rec)
	})
	return out, err
}

// untag removes name from image id; an image left without tags is deleted.
func untag(tx *bolt.Tx, id digest.Digest, name string) error {
	rec, err := getRecord(tx, id)
	if err != nil {
		return err
	}
	rec.RepoTags = slices.DeleteFunc(rec.RepoTags, func(s string) bool { return s == name })
	rec.RepoDigests = slices.DeleteFunc(rec.RepoDigests, func(s string) bool { return s == name })
	if err := byName(tx).Delete([]byte(name)); err != nil {
		return err
	}
	if len(rec.RepoTags) == 0 {
		return deleteRecord(tx, rec)
	}
	return putRecord(tx, rec)
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// resolve finds the image named by s: a name (normalised), an ID, or an
// unambiguous ID prefix.
func (s *records) resolve(q string) (*Record, error) {
	var out *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := resolveTx(tx, q)
		out = r
		return err
	})
	return out, err
}

func resolveTx(tx *bolt.Tx, q string) (*Record, error) {
	if looksLikeID(q) {
		id := q
		if !strings.HasPrefix(id, "sha256:") {
			id = "sha256:" + id
		}
		if r, err := getRecord(tx, digest.Digest(id)); err == nil {
			return r, nil
		}
		// A prefix: unique match only.
		var match digest.Digest
		c := byID(tx).Cursor()
		for k, _ := c.Seek([]byte(id)); k != nil && strings.HasPrefix(string(k), id); k, _ = c.Next() {
			if match != "" {
				return nil, fmt.Errorf("image ID prefix %q is ambiguous: %w", q, errdefs.ErrInvalidArgument)
			}
			match = digest.Digest(k)
		}
		if match != "" {
			return getRecord(tx, match)
		}
	}
	ref, err := ParseRef(q)
	if err != nil {
		if looksLikeID(q) {
			return nil, fmt.Errorf("image %q: %w", q, errdefs.ErrNotFound)
		}
		return nil, err
	}
	id := byName(tx).Get([]byte(ref.String()))
	if id == nil {
		return nil, fmt.Errorf("image %q: %w", q, errdefs.ErrNotFound)
	}
	return getRecord(tx, digest.Digest(id))
}

// list returns every image.
func (s *records) list() ([]*Record, error) {
	var out []*Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return byID(tx).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("image record %s: %w", k, err)
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, err
}

// remove removes what q names: a tag is untagged (the image goes with its
// last tag); an ID or a digest name removes the whole image. Removing what
// does not exist succeeds.
func (s *records) remove(q string) (removed bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		rec, err := resolveTx(tx, q)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		removed = true
		if ref, err := ParseRef(q); err == nil && !looksLikeID(q) {
			if _, isTag := ref.Tag(); isTag && slices.Contains(rec.RepoTags, ref.String()) {
				return untag(tx, rec.ID, ref.String())
			}
		}
		return deleteRecord(tx, rec)
	})
	return removed, err
}

// drop deletes the images for which bad returns true (used by reconcile).
func (s *records) drop(bad func(*Record) bool) ([]digest.Digest, error) {
	var dropped []digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		var victims []*Record
		if err := byID(tx).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil || bad(&r) {
				if err != nil {
					r.ID = digest.Digest(k)
				}
				victims = append(victims, &r)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, r := range victims {
			if err := deleteRecord(tx, r); err != nil {
				return err
			}
			dropped = append(dropped, r.ID)
		}
		// Names pointing at nothing go too.
		var stale [][]byte
		_ = byName(tx).ForEach(func(k, v []byte) error {
			if byID(tx).Get(v) == nil {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range stale {
			if err := byName(tx).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return dropped, err
}
