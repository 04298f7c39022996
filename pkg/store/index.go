// Package store keeps runtime objects (sandboxes, containers) both in
// memory, for fast lookups by ID, ID prefix and unique name, and in a bbolt
// bucket, so they survive a daemon restart. What an object is and how it is
// encoded is the caller's business: the index stores bytes.
package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// NewID returns a new object ID: 64 hex digits, random, as the anchors'
// sandbox and container IDs are.
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Index is the in-memory and on-disk index of one kind of object.
type Index[T any] struct {
	db     *bolt.DB
	bucket []byte
	kind   string // "sandbox", "container": for error messages

	mu    sync.RWMutex
	byID  map[string]T
	names map[string]string // unique name -> id
	idOf  map[string]string // id -> name
}

// Open creates the bucket if needed and loads every record with decode,
// which returns the object and its unique name.
func Open[T any](db *bolt.DB, bucket, kind string, decode func(id string, v []byte) (T, string, error)) (*Index[T], error) {
	x := &Index[T]{db: db, bucket: []byte(bucket), kind: kind, byID: map[string]T{}, names: map[string]string{}, idOf: map[string]string{}}
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(x.bucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			obj, name, err := decode(string(k), v)
			if err != nil {
				return fmt.Errorf("%s record %s: %w", kind, k, err)
			}
			x.add(string(k), name, obj)
			return nil
		})
	})
	return x, err
}

func (x *Index[T]) add(id, name string, obj T) {
	x.byID[id] = obj
	x.names[name] = id
	x.idOf[id] = name
}

// Reserve records a new object under its unique name. If the name is
// taken, it returns the object holding it and false, and records nothing.
func (x *Index[T]) Reserve(id, name string, obj T, data []byte) (T, bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if other, ok := x.names[name]; ok {
		return x.byID[other], false, nil
	}
	if err := x.Put(id, data); err != nil {
		var zero T
		return zero, false, err
	}
	x.add(id, name, obj)
	return obj, true, nil
}

// Put writes an object's record.
func (x *Index[T]) Put(id string, data []byte) error {
	return x.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(x.bucket).Put([]byte(id), data) })
}

// Delete forgets an object; a missing one is fine.
func (x *Index[T]) Delete(id string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.byID[id]; !ok {
		return nil
	}
	if err := x.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(x.bucket).Delete([]byte(id)) }); err != nil {
		return err
	}
	name := x.idOf[id]
	delete(x.byID, id)
	delete(x.idOf, id)
	if x.names[name] == id {
		delete(x.names, name)
	}
	return nil
}

// Get finds an object by ID or unique ID prefix.
func (x *Index[T]) Get(idOrPrefix string) (T, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var zero T
	if idOrPrefix == "" {
		return zero, fmt.Errorf("%s ID is empty: %w", x.kind, errdefs.ErrInvalidArgument)
	}
	if obj, ok := x.byID[idOrPrefix]; ok {
		return obj, nil
	}
	found := ""
	for id := range x.byID {
		if strings.HasPrefix(id, idOrPrefix) {
			if found != "" {
				return zero, fmt.Errorf("%s ID prefix %q is ambiguous: %w", x.kind, idOrPrefix, errdefs.ErrInvalidArgument)
			}
			found = id
		}
	}
	if found == "" {
		return zero, fmt.Errorf("%s %q: %w", x.kind, idOrPrefix, errdefs.ErrNotFound)
	}
	return x.byID[found], nil
}

// Exists reports whether id is recorded.
func (x *Index[T]) Exists(id string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.byID[id]
	return ok
}

// Values returns every object, in no particular order.
func (x *Index[T]) Values() []T {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]T, 0, len(x.byID))
	for _, obj := range x.byID {
		out = append(out, obj)
	}
	return out
}
