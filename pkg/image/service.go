// Package image pulls, stores and manages container images: manifests and
// configs in the content store, layers as overlay snapshots, and image
// records (names, digests, layers) in bbolt.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/singleflight"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/content"
	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
	"github.com/cri-rt/cri-rt/pkg/snapshot"
)

// Options configure a Service.
type Options struct {
	DB        *bolt.DB
	Content   content.Store
	Snapshots *snapshot.Store
	Hosts     *hosts.Resolver
	// MaxConcurrentDownloads bounds the layers fetched at once per pull.
	MaxConcurrentDownloads int
	// ProgressTimeout cancels a pull that receives no bytes for this long; 0 disables.
	ProgressTimeout config.Duration
	// PinnedImages are references (normalised on use) reported as pinned:
	// the sandbox image, which kubelet's image GC must never remove.
	PinnedImages []string
	// Metrics, when set, receives pull events.
	Metrics PullObserver
}

// PullObserver is told about pulls (implemented by the metrics package).
type PullObserver interface {
	PullStarted()
	PullFinished(err error, bytes int64, seconds float64)
	LayerDeduplicated()
}

// Service is the image service.
type Service struct {
	opts    Options
	records *records
	pinned  map[string]bool

	pulls  singleflight.Group // one pull per reference+credentials
	layers singleflight.Group // one unpack per chain ID

	// inflight protects what running pulls have written but not yet
	// recorded from the garbage collector.
	mu       sync.Mutex
	inflight map[string]int
	// gcMu keeps collection and the recording of a finished pull apart.
	gcMu sync.Mutex
}

// New builds the service. Call Reconcile before serving.
func New(opts Options) (*Service, error) {
	recs, err := newRecords(opts.DB)
	if err != nil {
		return nil, err
	}
	if opts.MaxConcurrentDownloads < 1 {
		opts.MaxConcurrentDownloads = 3
	}
	s := &Service{opts: opts, records: recs, pinned: map[string]bool{}, inflight: map[string]int{}}
	for _, p := range opts.PinnedImages {
		if ref, err := ParseRef(p); err == nil {
			s.pinned[ref.String()] = true
		}
	}
	return s, nil
}

// IsPinned reports whether kubelet must keep the image.
func (s *Service) IsPinned(r *Record) bool {
	for _, n := range r.names() {
		if s.pinned[n] {
			return true
		}
	}
	return false
}

// Get returns the image named by q: a name, an image ID, a repo digest or an
// unambiguous ID prefix.
func (s *Service) Get(q string) (*Record, error) { return s.records.resolve(q) }

// List returns every image, sorted by ID.
func (s *Service) List() ([]*Record, error) {
	recs, err := s.records.list()
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, err
}

// Config returns the image's OCI config (entrypoint, env, user, ...).
func (s *Service) Config(ctx context.Context, r *Record) (*ocispec.Image, error) {
	b, err := s.opts.Content.ReadAll(ctx, r.ID)
	if err != nil {
		return nil, fmt.Errorf("config of image %s: %w", r.ID, err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("config of image %s: %w", r.ID, err)
	}
	return &img, nil
}

// Remove removes what q names (see records.remove) and frees the blobs and
// layers nothing uses any more. Removing a missing image succeeds.
func (s *Service) Remove(ctx context.Context, q string) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	removed, err := s.records.remove(q)
	if err != nil || !removed {
		return err
	}
	return s.collectLocked(ctx)
}

// Usage is the disk used by images: unpacked layers plus stored blobs.
func (s *Service) Usage(ctx context.Context) (bytes, inodes int64, err error) {
	lb, li, err := s.opts.Snapshots.Usage()
	if err != nil {
		return 0, 0, err
	}
	cb, ci, err := s.opts.Content.Usage(ctx)
	return lb + cb, li + ci, err
}

// Root is the directory of the image filesystem (for ImageFsInfo).
func (s *Service) Root() string { return s.opts.Snapshots.Root() }

func (s *Service) hold(keys ...string) func() {
	s.mu.Lock()
	for _, k := range keys {
		s.inflight[k]++
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		for _, k := range keys {
			if s.inflight[k]--; s.inflight[k] <= 0 {
				delete(s.inflight, k)
			}
		}
		s.mu.Unlock()
	}
}

func (s *Service) isInflight(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[k] > 0
}

// collectLocked removes blobs and layers that no image, container or
// running pull uses. Mark and sweep: nothing is counted, so nothing drifts.
func (s *Service) collectLocked(ctx context.Context) error {
	recs, err := s.records.list()
	if err != nil {
		return err
	}
	blobs := map[digest.Digest]bool{}
	chains := map[digest.Digest]bool{}
	for _, r := range recs {
		blobs[r.ID], blobs[r.Manifest], blobs[r.Target.Digest] = true, true, true
		for _, l := range r.Layers {
			chains[l.ChainID] = true
		}
	}
	var errs []error
	if _, err := s.opts.Snapshots.Prune(func(c digest.Digest) bool {
		return chains[c] || s.isInflight(c.String())
	}); err != nil {
		errs = append(errs, err)
	}
	var victims []digest.Digest
	if err := s.opts.Content.Walk(ctx, func(i content.Info) error {
		if !blobs[i.Digest] && !s.isInflight(i.Digest.String()) {
			victims = append(victims, i.Digest)
		}
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	for _, d := range victims {
		if err := s.opts.Content.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reconcile makes the records, blobs and layer directories agree after a
// crash at any point: unfinished downloads and unpacks are removed, images
// whose layers or blobs are gone are dropped (a later pull brings them
// back), and what no image uses is collected.
func (s *Service) Reconcile(ctx context.Context) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	logger := klog.FromContext(ctx)
	// No pull runs yet, so every ingest is a leftover of a killed one.
	if ingests, err := s.opts.Content.Ingests(ctx); err == nil {
		for _, in := range ingests {
			_ = s.opts.Content.AbortIngest(ctx, in.Ref)
		}
	}
	lost, err := s.opts.Snapshots.Reconcile()
	if err != nil {
		logger.Error(err, "Reconciling layer snapshots")
	}
	lostSet := map[digest.Digest]bool{}
	for _, c := range lost {
		lostSet[c] = true
	}
	dropped, err := s.records.drop(func(r *Record) bool {
		for _, l := range r.Layers {
			if lostSet[l.ChainID] || !s.opts.Snapshots.Has(l.ChainID) {
				return true
			}
		}
		for _, d := range []digest.Digest{r.ID, r.Manifest, r.Target.Digest} {
			if _, err := s.opts.Content.Info(ctx, d); err != nil {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	for _, id := range dropped {
		logger.Info("Dropped an image whose content is incomplete after a restart; pull it again", "image", id)
	}
	return s.collectLocked(ctx)
}
