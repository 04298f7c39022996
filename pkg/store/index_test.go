package store

import (
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

type obj struct{ id, name string }

func open(t *testing.T, db *bolt.DB) *Index[*obj] {
	x, err := Open(db, "objs", "thing", func(id string, v []byte) (*obj, string, error) {
		return &obj{id: id, name: string(v)}, string(v), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestIndex(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x := open(t, db)
	a := &obj{"aaa111", "alpha"}
	if got, ok, err := x.Reserve(a.id, a.name, a, []byte(a.name)); err != nil || !ok || got != a {
		t.Fatalf("reserve: %v %v %v", got, ok, err)
	}
	if got, ok, _ := x.Reserve("bbb222", "alpha", &obj{"bbb222", "alpha"}, []byte("alpha")); ok || got != a {
		t.Fatal("a taken name must return its holder")
	}
	x.Reserve("aab333", "beta", &obj{"aab333", "beta"}, []byte("beta"))
	if _, err := x.Get("aa"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if got, err := x.Get("aaa"); err != nil || got.name != "alpha" {
		t.Fatalf("prefix: %v %v", got, err)
	}
	if _, err := x.Get("zzz"); !errdefs.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	// Records survive reopening; deleted ones do not, and free their name.
	if err := x.Delete("aab333"); err != nil {
		t.Fatal(err)
	}
	y := open(t, db)
	if len(y.Values()) != 1 || !y.Exists("aaa111") || y.Exists("aab333") {
		t.Fatalf("reloaded: %v", y.Values())
	}
	if _, ok, _ := y.Reserve("ccc", "beta", &obj{"ccc", "beta"}, []byte("beta")); !ok {
		t.Fatal("name of a deleted object not free")
	}
}
