// Package snapshot keeps image layers as overlayfs lower directories, one
// per chain ID, unpacked once and shared by every image that has them, and
// gives containers writable upper directories on top.
//
// On disk, under the store root:
//
//	<id>/fs        a committed layer (lowerdir) or an active snapshot's upperdir
//	<id>/work      an active snapshot's overlay workdir
//	tmp-<random>/  a layer being unpacked; never visible to anyone
//
// Directory names are short numeric ids (not chain IDs) so that the
// lowerdir option of a deep image stays within the one page mount(2) takes.
//
// State of a layer:
//
//	(absent) --Commit: unpack into tmp-*, rename to <id>, record--> committed
//	committed --Prune: no image, child or active snapshot uses it--> (absent)
//
// and of an active snapshot:
//
//	(absent) --Prepare--> active --Remove--> (absent)
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/mount"
)

var (
	bucketSnapshots = []byte("snapshots")
	bucketLayers    = []byte("layers")
	bucketActive    = []byte("active")
)

// Layer is a committed, read-only layer.
type Layer struct {
	ChainID   digest.Digest `json:"chainID"`
	DiffID    digest.Digest `json:"diffID"`
	Parent    digest.Digest `json:"parent,omitempty"`
	ID        uint64        `json:"id"`
	Size      int64         `json:"size"`   // bytes on disk
	Inodes    int64         `json:"inodes"` // files and dirs
	CreatedAt time.Time     `json:"createdAt"`
}

// Active is a writable snapshot (a container's rootfs upper layer).
type Active struct {
	Key       string        `json:"key"`
	Parent    digest.Digest `json:"parent"` // chain ID of the top image layer
	ID        uint64        `json:"id"`
	CreatedAt time.Time     `json:"createdAt"`
}

// Store is the snapshot store. It is safe for concurrent use.
type Store struct {
	root string
	db   *bolt.DB
	// mu orders commits and removals against Prune's mark and sweep.
	mu sync.RWMutex
}

// New returns a store rooted at root, recording in db.
func New(root string, db *bolt.DB) (*Store, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSnapshots)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(bucketLayers); err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists(bucketActive)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Store{root: root, db: db}, nil
}

// Root is the directory holding the snapshots (for ImageFsInfo).
func (s *Store) Root() string { return s.root }

func (s *Store) dir(id uint64) string { return filepath.Join(s.root, strconv.FormatUint(id, 10)) }

func layersBucket(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketSnapshots).Bucket(bucketLayers) }
func activeBucket(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketSnapshots).Bucket(bucketActive) }

func getLayer(tx *bolt.Tx, chainID digest.Digest) (Layer, bool, error) {
	v := layersBucket(tx).Get([]byte(chainID))
	if v == nil {
		return Layer{}, false, nil
	}
	var l Layer
	if err := json.Unmarshal(v, &l); err != nil {
		return Layer{}, false, fmt.Errorf("layer record %s: %w", chainID, err)
	}
	return l, true, nil
}

// Layer returns the committed layer with chainID.
func (s *Store) Layer(chainID digest.Digest) (Layer, error) {
	var l Layer
	err := s.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		l, ok, err = getLayer(tx, chainID)
		if err == nil && !ok {
			err = fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
		}
		return err
	})
	return l, err
}

// Has reports whether the layer with chainID is committed.
func (s *Store) Has(chainID digest.Digest) bool {
	_, err := s.Layer(chainID)
	return err == nil
}

// Commit unpacks a layer: fill writes the layer's content into an empty
// directory, which becomes the layer chainID once fill succeeds. The parent
// need not be committed yet (layers of one image unpack in parallel), but
// must be before the layer is used. Committing an existing layer is a no-op.
func (s *Store) Commit(ctx context.Context, chainID, parent, diffID digest.Digest, fill func(dir string) error) (retErr error) {
	if s.Has(chainID) {
		return nil
	}
	tmp, err := os.MkdirTemp(s.root, "tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil || tmp != "" {
			_ = removeAll(tmp)
		}
	}()
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return err
	}
	if err := fill(fsDir); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size, inodes := diskUsage(fsDir)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, ok, err := getLayer(tx, chainID); err != nil || ok {
			return err // committed meanwhile: ours is discarded
		}
		id, err := tx.Bucket(bucketSnapshots).NextSequence()
		if err != nil {
			return err
		}
		// Rename before the record commits: a crash in between leaves an
		// unrecorded directory, which Reconcile removes.
		if err := os.Rename(tmp, s.dir(id)); err != nil {
			return err
		}
		tmp = ""
		rec, _ := json.Marshal(Layer{ChainID: chainID, DiffID: diffID, Parent: parent, ID: id, Size: size, Inodes: inodes, CreatedAt: time.Now().UTC()})
		if err := layersBucket(tx).Put([]byte(chainID), rec); err != nil {
			_ = os.Rename(s.dir(id), filepath.Join(s.root, "tmp-failed-"+strconv.FormatUint(id, 10)))
			return err
		}
		return nil
	})
}

// lowerDirs returns the fs dirs of chainID and its ancestors, top first.
func lowerDirs(tx *bolt.Tx, s *Store, chainID digest.Digest) ([]string, error) {
	var dirs []string
	for c := chainID; c != ""; {
		l, ok, err := getLayer(tx, c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("layer %s of chain %s is missing: %w", c, chainID, errdefs.ErrNotFound)
		}
		dirs = append(dirs, filepath.Join(s.dir(l.ID), "fs"))
		c = l.Parent
	}
	return dirs, nil
}

// View returns read-only mounts of the image rootfs whose top layer is chainID.
func (s *Store) View(chainID digest.Digest) ([]mount.Mount, error) {
	var dirs []string
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		dirs, err = lowerDirs(tx, s, chainID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(dirs) == 1 {
		// overlay needs two lowers without an upper; a read-only bind does it.
		return []mount.Mount{{Type: "bind", Source: dirs[0], Options: []string{"rbind", "ro"}}}, nil
	}
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(dirs, ":")}}}, nil
}

// Prepare creates the writable snapshot key over the image rootfs whose top
// layer is parent, and returns its mounts. An empty parent gives an empty
// writable directory.
func (s *Store) Prepare(ctx context.Context, key string, parent digest.Digest) (_ []mount.Mount, retErr error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var act Active
	var dirs []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		if activeBucket(tx).Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		var err error
		if parent != "" {
			if dirs, err = lowerDirs(tx, s, parent); err != nil {
				return err
			}
		}
		id, err := tx.Bucket(bucketSnapshots).NextSequence()
		if err != nil {
			return err
		}
		d := s.dir(id)
		if err := os.MkdirAll(filepath.Join(d, "fs"), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(d, "work"), 0o711); err != nil {
			_ = removeAll(d)
			return err
		}
		act = Active{Key: key, Parent: parent, ID: id, CreatedAt: time.Now().UTC()}
		rec, _ := json.Marshal(act)
		if err := activeBucket(tx).Put([]byte(key), rec); err != nil {
			_ = removeAll(d)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.activeMounts(act, dirs), nil
}

func (s *Store) activeMounts(a Active, lowers []string) []mount.Mount {
	d := s.dir(a.ID)
	if len(lowers) == 0 {
		return []mount.Mount{{Type: "bind", Source: filepath.Join(d, "fs"), Options: []string{"rbind", "rw"}}}
	}
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + filepath.Join(d, "fs"), "workdir=" + filepath.Join(d, "work"),
	}}}
}

// Mounts returns the mounts of the active snapshot key.
func (s *Store) Mounts(key string) ([]mount.Mount, error) {
	var a Active
	var dirs []string
	err := s.db.View(func(tx *bolt.Tx) error {
		v := activeBucket(tx).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
		}
		if err := json.Unmarshal(v, &a); err != nil {
			return err
		}
		var err error
		if a.Parent != "" {
			dirs, err = lowerDirs(tx, s, a.Parent)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.activeMounts(a, dirs), nil
}

// UpperDir returns the writable directory of an active snapshot (for
// writable-layer usage stats).
func (s *Store) UpperDir(key string) (string, error) {
	var a Active
	err := s.db.View(func(tx *bolt.Tx) error {
		v := activeBucket(tx).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
		}
		return json.Unmarshal(v, &a)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir(a.ID), "fs"), nil
}

// Remove deletes the active snapshot key; removing a missing one succeeds.
// The caller unmounts it first.
func (s *Store) Remove(key string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		v := activeBucket(tx).Get([]byte(key))
		if v == nil {
			return nil
		}
		var a Active
		if err := json.Unmarshal(v, &a); err != nil {
			return err
		}
		id = a.ID
		return activeBucket(tx).Delete([]byte(key))
	})
	if err != nil || id == 0 {
		return err
	}
	return removeAll(s.dir(id))
}

// ActiveKeys lists the active snapshots.
func (s *Store) ActiveKeys() ([]string, error) {
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return activeBucket(tx).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys, err
}

// Layers lists the committed layers.
func (s *Store) Layers() ([]Layer, error) {
	var out []Layer
	err := s.db.View(func(tx *bolt.Tx) error {
		return layersBucket(tx).ForEach(func(k, v []byte) error {
			var l Layer
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			out = append(out, l)
			return nil
		})
	})
	return out, err
}

// Prune removes every committed layer that is not in the chain of a layer
// keep returns true for, nor under an active snapshot. It returns the chain
// IDs removed.
func (s *Store) Prune(keep func(chainID digest.Digest) bool) ([]digest.Digest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []digest.Digest
	var dirs []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		layers := map[digest.Digest]Layer{}
		if err := layersBucket(tx).ForEach(func(k, v []byte) error {
			var l Layer
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			layers[l.ChainID] = l
			return nil
		}); err != nil {
			return err
		}
		live := map[digest.Digest]bool{}
		markChain := func(c digest.Digest) {
			for c != "" && !live[c] {
				live[c] = true
				c = layers[c].Parent
			}
		}
		for c := range layers {
			if keep(c) {
				markChain(c)
			}
		}
		if err := activeBucket(tx).ForEach(func(k, v []byte) error {
			var a Active
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			markChain(a.Parent)
			return nil
		}); err != nil {
			return err
		}
		for c, l := range layers {
			if live[c] {
				continue
			}
			if err := layersBucket(tx).Delete([]byte(c)); err != nil {
				return err
			}
			removed = append(removed, c)
			dirs = append(dirs, s.dir(l.ID))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Directories go after the records: a crash in between leaves orphan
	// directories, never a record without its directory.
	var errs []error
	for _, d := range dirs {
		if err := removeAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// Reconcile makes disk and records agree after a crash: unpacks in
// progress and directories without a record are removed; records whose
// directory is gone are dropped and returned (with every layer above them),
// so the image store can drop the images that used them.
func (s *Store) Reconcile() (lost []digest.Digest, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := map[string]bool{}
	err = s.db.Update(func(tx *bolt.Tx) error {
		layers := map[digest.Digest]Layer{}
		_ = layersBucket(tx).ForEach(func(k, v []byte) error {
			var l Layer
			if json.Unmarshal(v, &l) == nil {
				layers[l.ChainID] = l
			}
			return nil
		})
		bad := map[digest.Digest]bool{}
		for c, l := range layers {
			if _, err := os.Stat(filepath.Join(s.dir(l.ID), "fs")); err != nil {
				bad[c] = true
			}
		}
		// A layer over a lost layer is lost too.
		for changed := true; changed; {
			changed = false
			for c, l := range layers {
				if !bad[c] && l.Parent != "" && (bad[l.Parent] || layers[l.Parent].ID == 0) {
					bad[c], changed = true, true
				}
			}
		}
		for c, l := range layers {
			if bad[c] {
				lost = append(lost, c)
				if err := layersBucket(tx).Delete([]byte(c)); err != nil {
					return err
				}
				continue
			}
			known[strconv.FormatUint(l.ID, 10)] = true
		}
		return activeBucket(tx).ForEach(func(k, v []byte) error {
			var a Active
			if json.Unmarshal(v, &a) == nil {
				known[strconv.FormatUint(a.ID, 10)] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return lost, err
	}
	var errs []error
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		if err := removeAll(filepath.Join(s.root, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return lost, errors.Join(errs...)
}

// Usage sums the size and inodes of the committed layers.
func (s *Store) Usage() (size, inodes int64, err error) {
	layers, err := s.Layers()
	for _, l := range layers {
		size += l.Size
		inodes += l.Inodes
	}
	return size, inodes, err
}

// diskUsage walks dir and returns the bytes allocated and the inode count.
func diskUsage(dir string) (size, inodes int64) {
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		inodes++
		size += st.Blocks * 512
		return nil
	})
	return size, inodes
}

// DiskUsage is diskUsage for other packages (writable layer stats).
func DiskUsage(dir string) (size, inodes int64) { return diskUsage(dir) }

// removeAll removes a directory tree, even one holding directories
// without write permission (root ignores modes, but be safe for tests).
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	// A layer may contain directories without write permission for the
	// owner; make them writable and try again.
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
