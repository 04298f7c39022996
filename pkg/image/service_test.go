package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/content"
	"github.com/cri-rt/cri-rt/pkg/imagebuild"
	"github.com/cri-rt/cri-rt/pkg/metadata"
	"github.com/cri-rt/cri-rt/pkg/mount"
	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
	"github.com/cri-rt/cri-rt/pkg/snapshot"
	"github.com/cri-rt/cri-rt/test/registry"
)

type testEnv struct {
	db   *bolt.DB
	root string
	svc  *Service
	snap *snapshot.Store
	blob *content.LocalStore
}

func newTestEnv(t *testing.T, reg config.RegistryConfig) *testEnv {
	t.Helper()
	root := t.TempDir()
	return openTestEnv(t, root, reg)
}

func openTestEnv(t *testing.T, root string, reg config.RegistryConfig) *testEnv {
	t.Helper()
	db, err := metadata.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := content.NewStore(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.New(filepath.Join(root, "snapshots"), db)
	if err != nil {
		t.Fatal(err)
	}
	if reg.ConfigPath == "" {
		reg.ConfigPath = filepath.Join(root, "certs.d")
	}
	svc, err := New(Options{DB: db, Content: blobs, Snapshots: snaps, Hosts: hosts.New(reg),
		MaxConcurrentDownloads: 3, ProgressTimeout: config.Duration(time.Minute), PinnedImages: []string{"registry.k8s.io/pause:3.10"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testEnv{db: db, root: root, svc: svc, snap: snaps, blob: blobs}
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rootfs mounts the image read-only and returns the mount point.
func (e *testEnv) rootfs(t *testing.T, rec *Record) string {
	t.Helper()
	ms, err := e.snap.View(rec.TopLayer())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := mount.All(ms, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mount.UnmountAll(dir) })
	return dir
}

// files lists what is left on disk of layers, blobs and ingests.
func (e *testEnv) leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"snapshots", "content/blobs", "content/ingest"} {
		_ = filepath.WalkDir(filepath.Join(e.root, d), func(p string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() {
				out = append(out, strings.TrimPrefix(p, e.root))
			}
			return nil
		})
	}
	return out
}

func threeLayerImage(t *testing.T) v1.Image {
	return registry.BuildImage(t, imagebuild.Config{Entrypoint: []string{"/bin/sh"}, User: "1000:1000", Env: []string{"A=b"}},
		[]imagebuild.Entry{
			imagebuild.Dir("etc", 0o755),
			imagebuild.File("etc/passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\n")),
			imagebuild.File("etc/deleted", 0o644, []byte("gone soon")),
			imagebuild.Dir("data", 0o755),
			imagebuild.File("data/old", 0o644, []byte("hidden by opaque")),
			imagebuild.File("bin/tool", 0o755|fs.ModeSetuid, []byte("#!/bin/sh\n")).Owned(0, 0),
			imagebuild.Hardlink("bin/tool2", "bin/tool"),
		},
		[]imagebuild.Entry{
			imagebuild.File("etc/.wh.deleted", 0o644, nil),
			imagebuild.Dir("data", 0o755),
			imagebuild.File("data/.wh..wh..opq", 0o644, nil),
			imagebuild.File("data/new", 0o600, []byte("fresh")).Owned(1000, 1000),
		},
		[]imagebuild.Entry{
			imagebuild.Symlink("link", "etc/passwd"),
		})
}

func TestPullByTagAndDigest(t *testing.T) {
	reg := registry.NewInProcess(t)
	img := threeLayerImage(t)
	ref := registry.Push(t, reg.Host, "test/app:v1", img)
	env := newTestEnv(t, config.RegistryConfig{})

	rec, err := env.svc.Pull(tctx(t), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfgDigest, _ := img.ConfigName()
	manifestDigest, _ := img.Digest()
	if rec.ID.String() != cfgDigest.String() {
		t.Fatalf("ID %s, want config digest %s", rec.ID, cfgDigest)
	}
	if want := []string{reg.Host + "/test/app:v1"}; fmt.Sprint(rec.RepoTags) != fmt.Sprint(want) {
		t.Fatalf("RepoTags %v", rec.RepoTags)
	}
	if want := reg.Host + "/test/app@" + manifestDigest.String(); len(rec.RepoDigests) != 1 || rec.RepoDigests[0] != want {
		t.Fatalf("RepoDigests %v, want %s", rec.RepoDigests, want)
	}
	if rec.User != "1000:1000" || len(rec.Layers) != 3 || rec.Size <= 0 {
		t.Fatalf("record %+v", rec)
	}

	dir := env.rootfs(t, rec)
	if b, err := os.ReadFile(filepath.Join(dir, "etc/passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Fatalf("etc/passwd: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/deleted")); !os.IsNotExist(err) {
		t.Fatalf("whiteout did not hide etc/deleted: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "data/old")); !os.IsNotExist(err) {
		t.Fatalf("opaque dir did not hide data/old: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "bin/tool"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("setuid lost: %v %v", fi.Mode(), err)
	}
	if tgt, err := os.Readlink(filepath.Join(dir, "link")); err != nil || tgt != "etc/passwd" {
		t.Fatalf("symlink: %q %v", tgt, err)
	}

	// By digest: the same image, now also found by that name; no layer is fetched again.
	reg.ResetCounts()
	byDigest := reg.Host + "/test/app@" + manifestDigest.String()
	rec2, err := env.svc.Pull(tctx(t), byDigest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec2.ID != rec.ID {
		t.Fatalf("digest pull gave %s", rec2.ID)
	}
	if n := len(reg.BlobGets()); n != 0 {
		t.Fatalf("a complete image was fetched again: %v", reg.BlobGets())
	}
	for _, q := range []string{ref, byDigest, rec.ID.String(), rec.ID.Encoded()[:12], rec.ID.String()[:20]} {
		got, err := env.svc.Get(q)
		if err != nil || got.ID != rec.ID {
			t.Errorf("Get(%q) = %v, %v", q, got, err)
		}
	}
}

func TestPullMultiArchIndexPicksThisPlatform(t *testing.T) {
	reg := registry.NewInProcess(t)
	amd := registry.BuildImage(t, imagebuild.Config{Cmd: []string{"amd64"}}, []imagebuild.Entry{imagebuild.File("arch", 0o644, []byte("amd64"))})
	armImg := &imagebuild.Image{Config: imagebuild.Config{Cmd: []string{"arm64"}}, Platform: imagebuild.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	b, _ := (&imagebuild.Layer{Entries: []imagebuild.Entry{imagebuild.File("arch", 0o644, []byte("arm64"))}}).Build()
	armImg.Layers = append(armImg.Layers, b)
	arm, err := armImg.Build()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := imagebuild.Index(imagebuild.OCI, arm, amd)
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.PushIndex(t, reg.Host, "multi/arch:1", idx)
	env := newTestEnv(t, config.RegistryConfig{})
	rec, err := env.svc.Pull(tctx(t), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	amdCfg, _ := amd.ConfigName()
	idxDigest, _ := idx.Digest()
	if rec.ID.String() != amdCfg.String() {
		t.Fatalf("picked %s, want the amd64 image %s", rec.ID, amdCfg)
	}
	if !strings.HasSuffix(rec.RepoDigests[0], idxDigest.String()) {
		t.Fatalf("repo digest %v should name the index %s", rec.RepoDigests, idxDigest)
	}
	if b, _ := os.ReadFile(filepath.Join(env.rootfs(t, rec), "arch")); string(b) != "amd64" {
		t.Fatalf("rootfs holds %q", b)
	}
}

func TestConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	reg := registry.NewInProcess(t)
	ref := registry.Push(t, reg.Host, "test/app:v1", threeLayerImage(t))
	reg.ResetCounts()
	env := newTestEnv(t, config.RegistryConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := env.svc.Pull(tctx(t), ref, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	gets := reg.BlobGets()
	if len(gets) != 4 { // config + 3 layers
		t.Fatalf("blobs fetched: %v", gets)
	}
	for d, n := range gets {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}
}

func TestSharedLayersStoredOnce(t *testing.T) {
	reg := registry.NewInProcess(t)
	base := []imagebuild.Entry{imagebuild.File("base", 0o644, []byte("shared"))}
	a := registry.Push(t, reg.Host, "test/a:1", registry.BuildImage(t, imagebuild.Config{Cmd: []string{"a"}}, base, []imagebuild.Entry{imagebuild.File("a", 0o644, []byte("a"))}))
	b := registry.Push(t, reg.Host, "test/b:1", registry.BuildImage(t, imagebuild.Config{Cmd: []string{"b"}}, base, []imagebuild.Entry{imagebuild.File("b", 0o644, []byte("b"))}))
	env := newTestEnv(t, config.RegistryConfig{})
	ra, err := env.svc.Pull(tctx(t), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.ResetCounts()
	rb, err := env.svc.Pull(tctx(t), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Layers[0].ChainID != rb.Layers[0].ChainID {
		t.Fatal("base layer chain IDs differ")
	}
	if n := reg.BlobGets()[ra.Layers[0].Blob.String()]; n != 0 {
		t.Fatalf("shared layer fetched again (%d)", n)
	}
	layers, _ := env.snap.Layers()
	if len(layers) != 3 {
		t.Fatalf("%d layers stored, want 3", len(layers))
	}
	// Removing one image keeps the shared layer for the other.
	if err := env.svc.Remove(tctx(t), a); err != nil {
		t.Fatal(err)
	}
	layers, _ = env.snap.Layers()
	if len(layers) != 2 || !env.snap.Has(rb.Layers[0].ChainID) {
		t.Fatalf("after removing a: %+v", layers)
	}
	if err := env.svc.Remove(tctx(t), rb.ID.String()); err != nil {
		t.Fatal(err)
	}
	if left := env.leftovers(t); len(left) != 0 {
		t.Fatalf("left after removing every image: %v", left)
	}
	// Removing a missing image succeeds.
	if err := env.svc.Remove(tctx(t), a); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveUntagsThenRemoves(t *testing.T) {
	reg := registry.NewInProcess(t)
	img := threeLayerImage(t)
	r1 := registry.Push(t, reg.Host, "test/app:one", img)
	r2 := registry.Push(t, reg.Host, "test/app:two", img)
	env := newTestEnv(t, config.RegistryConfig{})
	if _, err := env.svc.Pull(tctx(t), r1, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := env.svc.Pull(tctx(t), r2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.RepoTags) != 2 {
		t.Fatalf("tags %v", rec.RepoTags)
	}
	if err := env.svc.Remove(tctx(t), r1); err != nil {
		t.Fatal(err)
	}
	rec, err = env.svc.Get(r2)
	if err != nil || len(rec.RepoTags) != 1 {
		t.Fatalf("after untag: %+v %v", rec, err)
	}
	if _, err := env.svc.Get(r1); !errdefs.IsNotFound(err) {
		t.Fatalf("removed tag still resolves: %v", err)
	}
	if err := env.svc.Remove(tctx(t), r2); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Get(rec.ID.String()); !errdefs.IsNotFound(err) {
		t.Fatalf("image outlived its last tag: %v", err)
	}
}

func TestCorruptBlobFailsAndLeavesNothing(t *testing.T) {
	img := threeLayerImage(t)
	layers, _ := img.Layers()
	bad, _ := layers[1].Digest()
	good, _ := layers[0].Compressed()
	goodBytes, _ := io.ReadAll(good)
	badRC, _ := layers[1].Compressed()
	flipped, _ := io.ReadAll(badRC)
	flipped[len(flipped)/2] ^= 0xff
	for name, body := range map[string][]byte{
		"another valid layer": goodBytes, // wrong size and digest
		"one byte flipped":    flipped,   // same size, wrong digest
	} {
		t.Run(name, func(t *testing.T) {
			reg := registry.NewInProcess(t)
			ref := registry.Push(t, reg.Host, "test/bad:1", img)
			reg.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, bad.String()) {
					w.Write(body)
					return true
				}
				return false
			})
			env := newTestEnv(t, config.RegistryConfig{})
			_, err := env.svc.Pull(tctx(t), ref, nil)
			if err == nil {
				t.Fatal("pull of a corrupt blob succeeded")
			}
			t.Log(err)
			if left := env.leftovers(t); len(left) != 0 {
				t.Fatalf("failed pull left %v", left)
			}
			if imgs, _ := env.svc.List(); len(imgs) != 0 {
				t.Fatalf("failed pull left images %v", imgs)
			}
		})
	}
}

func TestMaliciousLayerRejected(t *testing.T) {
	reg := registry.NewInProcess(t)
	outside := t.TempDir()
	evil := registry.RawLayerImage(t, []tar.Header{
		{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777},
		{Name: "escape/pwned", Typeflag: tar.TypeReg, Mode: 0o644},
	})
	ref := registry.Push(t, reg.Host, "test/evil:1", evil)
	env := newTestEnv(t, config.RegistryConfig{})
	if _, err := env.svc.Pull(tctx(t), ref, nil); err == nil {
		t.Fatal("a layer writing through a symlink pull succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("layer wrote outside: %v", ents)
	}
	if left := env.leftovers(t); len(left) != 0 {
		t.Fatalf("failed pull left %v", left)
	}
}

func TestMirrorDownFallsThrough(t *testing.T) {
	reg := registry.NewInProcess(t)
	registry.Push(t, reg.Host, "library/app:1", threeLayerImage(t))
	certs := t.TempDir()
	hostDir := filepath.Join(certs, "registry.example")
	os.MkdirAll(hostDir, 0o755)
	hostsToml := fmt.Sprintf(`server = "http://127.0.0.1:1"
[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, reg.Host)
	os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(hostsToml), 0o644)
	env := newTestEnv(t, config.RegistryConfig{ConfigPath: certs})
	rec, err := env.svc.Pull(tctx(t), "registry.example/library/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RepoTags[0] != "registry.example/library/app:1" {
		t.Fatalf("tags %v", rec.RepoTags)
	}
	if reg.Count("GET /v2/library/app/manifests/1") == 0 {
		t.Fatal("the working mirror was not asked")
	}
}

func TestNotFoundIsNotFound(t *testing.T) {
	reg := registry.NewInProcess(t)
	env := newTestEnv(t, config.RegistryConfig{})
	_, err := env.svc.Pull(tctx(t), reg.Host+"/no/such:image", nil)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("want NotFound, got %v", err)
	}
}

func TestPinned(t *testing.T) {
	env := newTestEnv(t, config.RegistryConfig{})
	if !env.svc.IsPinned(&Record{RepoTags: []string{"registry.k8s.io/pause:3.10"}}) {
		t.Fatal("sandbox image not pinned")
	}
	if env.svc.IsPinned(&Record{RepoTags: []string{"docker.io/library/busybox:latest"}}) {
		t.Fatal("other image pinned")
	}
}

func TestProgressTimeoutCancelsStalledPull(t *testing.T) {
	reg := registry.NewInProcess(t)
	img := threeLayerImage(t)
	ref := registry.Push(t, reg.Host, "test/slow:1", img)
	layers, _ := img.Layers()
	stall, _ := layers[2].Digest()
	release := make(chan struct{})
	defer close(release)
	reg.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, stall.String()) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	})
	env := newTestEnv(t, config.RegistryConfig{})
	env.svc.opts.ProgressTimeout = config.Duration(300 * time.Millisecond)
	start := time.Now()
	_, err := env.svc.Pull(tctx(t), ref, nil)
	if !errors.Is(err, ErrNoProgress) {
		t.Fatalf("want a no-progress error, got %v after %s", err, time.Since(start))
	}
	if left := env.leftovers(t); len(left) != 0 {
		t.Fatalf("stalled pull left %v", left)
	}
}

func TestMirror404FallsThroughToUpstream(t *testing.T) {
	mirror := registry.NewInProcess(t) // empty: answers 404
	upstream := registry.NewInProcess(t)
	registry.Push(t, upstream.Host, "library/app:1", threeLayerImage(t))
	env := newTestEnv(t, config.RegistryConfig{Mirrors: map[string]config.MirrorConfig{
		upstream.Host: {Endpoints: []string{"http://" + mirror.Host}},
	}})
	if _, err := env.svc.Pull(tctx(t), upstream.Host+"/library/app:1", nil); err != nil {
		t.Fatal(err)
	}
	if mirror.Count("GET /v2/library/app/manifests/1") != 1 {
		t.Fatal("the mirror was not tried first")
	}
}

func TestBrokenConnectionResumesWithRange(t *testing.T) {
	reg := registry.NewInProcess(t)
	img := registry.BuildImage(t, imagebuild.Config{}, []imagebuild.Entry{imagebuild.File("big", 0o644, bytes.Repeat([]byte("0123456789abcdef"), 64<<10))})
	ref := registry.Push(t, reg.Host, "test/big:1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	blob, _ := io.ReadAll(rc)
	var ranges []string
	var mu sync.Mutex
	reg.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, ld.String()) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if rg := r.Header.Get("Range"); rg != "" {
			ranges = append(ranges, rg)
			var from int
			fmt.Sscanf(rg, "bytes=%d-", &from)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(blob)-1, len(blob)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(blob[from:])
			return true
		}
		// First attempt: send half, then break the connection.
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		w.WriteHeader(http.StatusOK)
		w.Write(blob[:len(blob)/2])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	})
	env := newTestEnv(t, config.RegistryConfig{})
	rec, err := env.svc.Pull(tctx(t), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 1 || ranges[0] != fmt.Sprintf("bytes=%d-", len(blob)/2) {
		t.Fatalf("resume requests: %v", ranges)
	}
	if fi, err := os.Stat(filepath.Join(env.rootfs(t, rec), "big")); err != nil || fi.Size() != 16*64<<10 {
		t.Fatalf("resumed layer content: %v %v", fi, err)
	}
}

func TestRestartReconcilesOrphans(t *testing.T) {
	reg := registry.NewInProcess(t)
	ref := registry.Push(t, reg.Host, "test/app:v1", threeLayerImage(t))
	root := t.TempDir()
	env := openTestEnv(t, root, config.RegistryConfig{})
	rec, err := env.svc.Pull(tctx(t), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crash at awkward points: an unpack in progress, an
	// unrecorded layer dir, a partial ingest, an unreferenced blob.
	os.MkdirAll(filepath.Join(root, "snapshots", "tmp-123", "fs"), 0o755)
	os.MkdirAll(filepath.Join(root, "snapshots", "999", "fs"), 0o755)
	w, err := env.blob.Writer(tctx(t), "partial", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a blob"))
	w.Close()
	orphan := []byte("orphan blob")
	if err := env.svc.storeBlob(tctx(t), digest.FromBytes(orphan), orphan); err != nil {
		t.Fatal(err)
	}
	// And a layer whose directory vanished: its image must go.
	other := registry.Push(t, reg.Host, "test/other:1", registry.BuildImage(t, imagebuild.Config{Cmd: []string{"x"}}, []imagebuild.Entry{imagebuild.File("o", 0o644, []byte("o"))}))
	orec, err := env.svc.Pull(tctx(t), other, nil)
	if err != nil {
		t.Fatal(err)
	}
	ol, _ := env.snap.Layer(orec.TopLayer())
	os.RemoveAll(filepath.Join(root, "snapshots", fmt.Sprint(ol.ID)))

	env.db.Close() // the daemon "crashes"
	env2 := openTestEnv(t, root, config.RegistryConfig{})
	if _, err := env2.svc.Get(rec.ID.String()); err != nil {
		t.Fatalf("intact image lost: %v", err)
	}
	if _, err := env2.svc.Get(other); !errdefs.IsNotFound(err) {
		t.Fatalf("image with a lost layer kept: %v", err)
	}
	for _, p := range []string{"snapshots/tmp-123", "snapshots/999"} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s survived reconcile", p)
		}
	}
	if ing, _ := env2.blob.Ingests(tctx(t)); len(ing) != 0 {
		t.Errorf("ingests survived: %v", ing)
	}
	if _, err := env2.blob.Info(tctx(t), digest.FromBytes(orphan)); !errdefs.IsNotFound(err) {
		t.Errorf("orphan blob survived: %v", err)
	}
	env2.rootfs(t, rec) // still mountable
}

func TestSchema1IsRefusedClearly(t *testing.T) {
	reg := registry.NewInProcess(t)
	schema1 := []byte(`{"schemaVersion":1,"name":"old/app","tag":"1","fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],"history":[{"v1Compatibility":"{}"}]}`)
	reg.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")
			w.Write(schema1)
			return true
		}
		return false
	})
	env := newTestEnv(t, config.RegistryConfig{})
	_, err := env.svc.Pull(tctx(t), reg.Host+"/old/app:1", nil)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "schema 1") {
		t.Fatalf("schema1: %v", err)
	}
}
