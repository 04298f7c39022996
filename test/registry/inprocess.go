// Package registry runs registries for tests: go-containerregistry's
// in-process registry behind a counting, fault-injecting handler, and
// Debian's docker-registry as a real process.
package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// InProcess is an in-process registry on 127.0.0.1.
type InProcess struct {
	Server *httptest.Server
	// Host is host:port, usable as an image reference's registry.
	Host string

	mu     sync.Mutex
	counts map[string]int
	// Intercept, when set, may answer a request itself (return true) to
	// inject faults; it runs before the registry.
	Intercept func(w http.ResponseWriter, r *http.Request) bool
}

// NewInProcess starts a registry; it stops at the end of the test.
func NewInProcess(t testing.TB) *InProcess {
	t.Helper()
	reg := &InProcess{counts: map[string]int{}}
	inner := registry.New(registry.Logger(nullLogger()))
	reg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		reg.counts[r.Method+" "+r.URL.Path]++
		icpt := reg.Intercept
		reg.mu.Unlock()
		if icpt != nil && icpt(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Server.Close)
	reg.Host = strings.TrimPrefix(reg.Server.URL, "http://")
	return reg
}

// SetIntercept installs a fault injector (nil removes it).
func (r *InProcess) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	r.mu.Lock()
	r.Intercept = f
	r.mu.Unlock()
}

// Count returns how many requests "METHOD /path" received.
func (r *InProcess) Count(methodPath string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[methodPath]
}

// BlobGets returns the number of GETs per blob digest.
func (r *InProcess) BlobGets() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, n := range r.counts {
		if strings.HasPrefix(k, "GET ") && strings.Contains(k, "/blobs/") {
			out[k[strings.LastIndex(k, "/")+1:]] += n
		}
	}
	return out
}

// ResetCounts forgets the request counts.
func (r *InProcess) ResetCounts() {
	r.mu.Lock()
	r.counts = map[string]int{}
	r.mu.Unlock()
}

// Push pushes img as repo:tag (repo without host) and returns the full reference.
func Push(t testing.TB, host, repoTag string, img v1.Image) string {
	t.Helper()
	ref := host + "/" + repoTag
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := imagebuild.Push(ctx, ref, img, true); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// PushIndex pushes an index as repo:tag and returns the full reference.
func PushIndex(t testing.TB, host, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref := host + "/" + repoTag
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := imagebuild.PushIndex(ctx, ref, idx, true); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// BuildImage builds an image of the given layers (each a list of entries)
// with cfg, failing the test on error.
func BuildImage(t testing.TB, cfg imagebuild.Config, layers ...[]imagebuild.Entry) v1.Image {
	t.Helper()
	img := &imagebuild.Image{Config: cfg}
	for i, entries := range layers {
		b, err := (&imagebuild.Layer{Name: "layer" + string(rune('0'+i)), Entries: entries}).Build()
		if err != nil {
			t.Fatal(err)
		}
		img.Layers = append(img.Layers, b)
	}
	v, err := img.Build()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
