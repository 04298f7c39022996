// Package metadata owns cri-rt's bbolt database: it opens it, checks the
// schema version and documents the schema. Each store (images, snapshots)
// keeps its records in its own top-level bucket.
//
// # Schema, version 1
//
//	meta.db
//	├── meta/version                "1"
//	├── images/
//	│   ├── byid/<image id>         JSON image.Record: names, manifest/config digests,
//	│   │                           layer chain IDs, size, pinned, user, annotations
//	│   └── names/<name>            image id   (repo tags and repo digests; an index)
//	└── snapshots/
//	    ├── layers/<chain id>       JSON snapshot.Layer: dir id, diff id, parent chain id, size, inodes
//	    └── active/<key>            JSON snapshot.Active: dir id, parent chain id (a container's rw layer)
//
// Blobs (manifests, indexes, configs) live in the content store on disk and
// are referenced only from image records; layer and blob reference counts are
// not stored but derived from the image records and active snapshots when
// something is removed (mark and sweep), so no counter can drift after a
// crash. Writes are ordered so that a crash at any point leaves at worst
// unreferenced files, which Reconcile removes at start.
package metadata

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the bucket layout above.
const SchemaVersion = "1"

var versionKey = []byte("version")

// Open opens (creating) the database at path and checks its schema version.
func Open(path string) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("opening metadata db %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		switch v := b.Get(versionKey); {
		case v == nil:
			return b.Put(versionKey, []byte(SchemaVersion))
		case string(v) != SchemaVersion:
			return fmt.Errorf("metadata db %s has schema version %s; this cri-rt reads %s", path, v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
