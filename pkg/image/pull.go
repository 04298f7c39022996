package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/archive"
	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
	"github.com/cri-rt/cri-rt/pkg/registry/remote"
)

// PullAuth is the credentials a pull request carries (kubelet's
// PullImageRequest.auth), used for the registry host it names.
type PullAuth struct {
	Username, Password, Auth, IdentityToken, RegistryToken string
	// ServerAddress, when set, names the registry the credentials are for;
	// they are not sent anywhere else.
	ServerAddress string
}

func (a *PullAuth) key() string {
	if a == nil {
		return ""
	}
	h := sha256.Sum256([]byte(strings.Join([]string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken, a.ServerAddress}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// ErrNoProgress cancels a pull that received no bytes for the progress timeout.
var ErrNoProgress = errors.New("image pull made no progress")

// Pull fetches the image ref and returns its record. Concurrent pulls of
// the same reference with the same credentials share one download; layers
// shared between images are fetched and unpacked once. The work goes on if
// the caller gives up (kubelet times out and retries), so the retry finds
// it done or joins it.
func (s *Service) Pull(ctx context.Context, rawRef string, auth *PullAuth) (*Record, error) {
	ref, err := ParseRef(rawRef)
	if err != nil {
		return nil, err
	}
	ch := s.pulls.DoChan(ref.String()+"\x00"+auth.key(), func() (any, error) {
		// Detached from the first caller, but still logged under its id.
		return s.pull(context.WithoutCancel(ctx), ref, auth)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Record), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Service) pull(ctx context.Context, ref Ref, auth *PullAuth) (rec *Record, retErr error) {
	logger := klog.FromContext(ctx).WithValues("image", ref.String())
	start := time.Now()
	if s.opts.Metrics != nil {
		s.opts.Metrics.PullStarted()
	}
	ctx, progress, stop := watchProgress(ctx, s.opts.ProgressTimeout.Std())
	defer stop()
	defer func() {
		if retErr != nil {
			// Layers this pull committed before failing belong to no image:
			// free them now rather than at the next removal. (Deferred
			// before the holds, so it runs after they are released.)
			s.gcMu.Lock()
			if err := s.collectLocked(context.WithoutCancel(ctx)); err != nil {
				logger.Error(err, "Cleaning up after a failed pull")
			}
			s.gcMu.Unlock()
		}
	}()
	defer func() {
		if s.opts.Metrics != nil {
			s.opts.Metrics.PullFinished(retErr, progress.bytes.Load(), time.Since(start).Seconds())
		}
		if cause := context.Cause(ctx); retErr != nil && errors.Is(cause, ErrNoProgress) {
			retErr = fmt.Errorf("pulling %s: %w", ref, cause)
		}
	}()

	// A digest pull of an image that is complete here needs no network.
	if d, ok := ref.Digest(); ok {
		if r, err := s.records.resolve(ref.String()); err == nil && r.Target.Digest == d && s.complete(ctx, r) {
			return r, nil
		}
	}

	eps, err := s.opts.Hosts.Endpoints(ref.Host())
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	creds, err := credentialsFor(ref, auth)
	if err != nil {
		return nil, err
	}
	repo := &remote.Repository{
		Host: ref.Host(), Name: ref.Repository(), Endpoints: eps,
		Credentials: func(ep hosts.Endpoint) *remote.Credentials {
			// kubelet's credentials are for the registry itself (its server,
			// wherever hosts.toml points it) and for an endpoint they name;
			// a mirror gets its own from the config.
			if creds != nil && (!ep.Mirror || (auth.ServerAddress != "" && sameRegistry(auth.ServerAddress, ep.URL.Host))) {
				return creds
			}
			c, _ := remote.FromAuthConfig(ep.Auth)
			return c
		},
		Progress: progress.add,
	}
	defer repo.Close()

	target, body, err := repo.Resolve(ctx, ref.Object())
	if err != nil {
		return nil, err
	}
	release := s.hold(target.Digest.String())
	defer release()
	manifestDesc, manifest, err := s.platformManifest(ctx, repo, target, body)
	if err != nil {
		return nil, err
	}
	if manifestDesc.Digest != target.Digest {
		defer s.hold(manifestDesc.Digest.String())()
	}
	defer s.hold(manifest.Config.Digest.String())()
	cfgBytes, err := s.fetchSmallBlob(ctx, repo, manifest.Config)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return nil, fmt.Errorf("image config %s is not valid JSON: %v: %w", manifest.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(manifest.Layers) {
		return nil, fmt.Errorf("image config lists %d layers, the manifest %d: %w", len(cfg.RootFS.DiffIDs), len(manifest.Layers), errdefs.ErrInvalidArgument)
	}
	chains := chainIDs(cfg.RootFS.DiffIDs)
	keys := make([]string, len(chains))
	for i, c := range chains {
		keys[i] = c.String()
	}
	defer s.hold(keys...)()

	rec = &Record{
		ID: manifest.Config.Digest, Target: target, Manifest: manifestDesc.Digest,
		User: cfg.Config.User, Annotations: manifest.Annotations, CreatedAt: time.Now().UTC(),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.MaxConcurrentDownloads)
	for i, l := range manifest.Layers {
		if err := checkLayerMediaType(l.MediaType); err != nil {
			return nil, err
		}
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		rec.Layers = append(rec.Layers, LayerRef{ChainID: chains[i], DiffID: cfg.RootFS.DiffIDs[i], Blob: l.Digest, Size: l.Size})
		g.Go(func() error { return s.unpack(gctx, repo, l, chains[i], parent, cfg.RootFS.DiffIDs[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Blobs are stored last, so a failed pull stores nothing the next
	// collection would not remove (see below).
	if err := s.storeBlob(ctx, target.Digest, body); err != nil {
		return nil, err
	}
	if manifestDesc.Digest != target.Digest {
		if err := s.storeBlob(ctx, manifestDesc.Digest, manifest.raw); err != nil {
			return nil, err
		}
	}
	if err := s.storeBlob(ctx, manifest.Config.Digest, cfgBytes); err != nil {
		return nil, err
	}
	for _, l := range rec.Layers {
		if sl, err := s.opts.Snapshots.Layer(l.ChainID); err == nil {
			rec.Size += sl.Size
		}
	}
	tag := ""
	if t, ok := ref.Tag(); ok && t != "" {
		tag = ref.String()
	}
	s.gcMu.Lock()
	rec, err = s.records.upsert(rec, tag, ref.DigestName(target.Digest))
	s.gcMu.Unlock()
	if err != nil {
		return nil, err
	}
	logger.Info("Pulled image", "id", rec.ID, "layers", len(rec.Layers), "bytes", progress.bytes.Load(), "duration", time.Since(start))
	return rec, nil
}

// complete reports whether everything r needs is here.
func (s *Service) complete(ctx context.Context, r *Record) bool {
	for _, l := range r.Layers {
		if !s.opts.Snapshots.Has(l.ChainID) {
			return false
		}
	}
	_, err := s.opts.Content.Info(ctx, r.ID)
	return err == nil
}

func credentialsFor(ref Ref, auth *PullAuth) (*remote.Credentials, error) {
	if auth == nil {
		return nil, nil
	}
	if auth.ServerAddress != "" && !sameRegistry(auth.ServerAddress, ref.Host()) {
		// Credentials for another registry must not be sent to this one.
		return nil, nil
	}
	c, err := remote.NewCredentials(auth.Username, auth.Password, auth.Auth, auth.IdentityToken, auth.RegistryToken)
	if err != nil {
		return nil, fmt.Errorf("pull credentials: %w", err)
	}
	return c, nil
}

// sameRegistry compares a server address as kubelet gives it ("https://
// index.docker.io/v1/", "registry.example:5000") with a reference's host.
func sameRegistry(server, host string) bool {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	canon := func(h string) string {
		switch h {
		case "index.docker.io", "registry-1.docker.io", "docker.io":
			return "docker.io"
		}
		return h
	}
	return canon(s) == canon(host)
}

// manifestWithRaw is a parsed image manifest with its bytes.
type manifestWithRaw struct {
	ocispec.Manifest
	raw []byte
}

// platformManifest returns the image manifest for this host: the target
// itself, or the entry of an index (manifest list) matching this platform.
func (s *Service) platformManifest(ctx context.Context, repo *remote.Repository, target ocispec.Descriptor, body []byte) (ocispec.Descriptor, *manifestWithRaw, error) {
	switch target.MediaType {
	case remote.MediaTypeDockerSchema1, remote.MediaTypeDockerSchema1JWS:
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s/%s uses Docker image manifest schema 1, which is not supported (re-push it with a current client): %w", repo.Host, repo.Name, errdefs.ErrInvalidArgument)
	case ocispec.MediaTypeImageIndex, remote.MediaTypeDockerManifestList:
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("image index %s: %v: %w", target.Digest, err, errdefs.ErrInvalidArgument)
		}
		chosen, err := selectPlatform(idx.Manifests)
		if err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("%s/%s@%s: %w", repo.Host, repo.Name, target.Digest, err)
		}
		desc, mb, err := repo.FetchManifest(ctx, chosen.Digest)
		if err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == remote.MediaTypeDockerManifestList {
			return ocispec.Descriptor{}, nil, fmt.Errorf("nested image index %s is not supported: %w", desc.Digest, errdefs.ErrInvalidArgument)
		}
		m, err := parseManifest(desc, mb)
		return desc, m, err
	case ocispec.MediaTypeImageManifest, remote.MediaTypeDockerManifest:
		m, err := parseManifest(target, body)
		return target, m, err
	}
	return ocispec.Descriptor{}, nil, fmt.Errorf("unsupported manifest media type %q: %w", target.MediaType, errdefs.ErrInvalidArgument)
}

func parseManifest(desc ocispec.Descriptor, b []byte) (*manifestWithRaw, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("image manifest %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.Config.Digest.Validate() != nil {
		return nil, fmt.Errorf("image manifest %s has no valid config: %w", desc.Digest, errdefs.ErrInvalidArgument)
	}
	return &manifestWithRaw{Manifest: m, raw: b}, nil
}

func checkLayerMediaType(mt string) error {
	switch {
	case strings.HasSuffix(mt, "+encrypted"):
		return fmt.Errorf("layer media type %q: encrypted layers are not supported: %w", mt, errdefs.ErrInvalidArgument)
	case strings.HasPrefix(mt, "application/vnd.oci.image.layer."),
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs."),
		mt == "":
		return nil
	}
	return fmt.Errorf("unsupported layer media type %q: %w", mt, errdefs.ErrInvalidArgument)
}

// chainIDs computes the chain ID of each layer: the first is its diff ID,
// each next one sha256("<parent chain ID> <diff ID>"), per the OCI spec.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// unpack fetches one layer and unpacks it while it downloads, unless it is
// here already; concurrent pulls needing the same layer share the work.
func (s *Service) unpack(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, chainID, parent, diffID digest.Digest) error {
	if s.opts.Snapshots.Has(chainID) {
		if s.opts.Metrics != nil {
			s.opts.Metrics.LayerDeduplicated()
		}
		return nil
	}
	ch := s.layers.DoChan(chainID.String(), func() (any, error) {
		return nil, s.opts.Snapshots.Commit(ctx, chainID, parent, diffID, func(dir string) error {
			rc, err := repo.OpenBlob(ctx, desc.Digest, desc.Size)
			if err != nil {
				return err
			}
			defer rc.Close()
			res, err := archive.ApplyLayer(ctx, dir, rc)
			if err != nil {
				return fmt.Errorf("layer %s: %w", desc.Digest, err)
			}
			if res.DiffID != diffID {
				return fmt.Errorf("layer %s unpacks to diff ID %s, the image config says %s: %w", desc.Digest, res.DiffID, diffID, errdefs.ErrDataLoss)
			}
			return nil
		})
	})
	// Wait for the shared work even if this pull is cancelled: it runs
	// under the first puller's context and ends promptly when that is
	// cancelled, and returning earlier would let a half-unpacked layer be
	// seen by the cleanup of a failed pull.
	res := <-ch
	return res.Err
}

// fetchSmallBlob returns a config blob, from the store when present.
func (s *Service) fetchSmallBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]byte, error) {
	if b, err := s.opts.Content.ReadAll(ctx, desc.Digest); err == nil {
		return b, nil
	}
	if desc.Size > 16<<20 {
		return nil, fmt.Errorf("blob %s is %d bytes, too large for a config: %w", desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	rc, err := repo.OpenBlob(ctx, desc.Digest, desc.Size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// storeBlob writes verified bytes to the content store.
func (s *Service) storeBlob(ctx context.Context, d digest.Digest, b []byte) error {
	w, err := s.opts.Content.Writer(ctx, "pull-"+d.String(), d, int64(len(b)))
	if errdefs.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.Offset() > 0 {
		// A leftover partial ingest: start over rather than trust it.
		_ = w.Abort()
		if w, err = s.opts.Content.Writer(ctx, "pull-"+d.String(), d, int64(len(b))); err != nil {
			return err
		}
	}
	if _, err := w.Write(b); err != nil {
		_ = w.Abort()
		return err
	}
	if err := w.Commit(ctx, int64(len(b)), d); err != nil {
		return err
	}
	return w.Close()
}

// progressWatch counts received bytes and cancels the pull when none
// arrive for the timeout.
type progressWatch struct {
	last  atomic.Int64 // unix nanoseconds of the last progress
	bytes atomic.Int64
}

func (p *progressWatch) add(n int) {
	p.bytes.Add(int64(n))
	p.last.Store(time.Now().UnixNano())
}

func watchProgress(ctx context.Context, timeout time.Duration) (context.Context, *progressWatch, func()) {
	p := &progressWatch{}
	p.last.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancelCause(ctx)
	if timeout <= 0 {
		return ctx, p, func() { cancel(nil) }
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(timeout/8, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				idle := time.Since(time.Unix(0, p.last.Load()))
				if idle > timeout {
					cancel(fmt.Errorf("%w for %s: %w", ErrNoProgress, timeout, errdefs.ErrUnavailable))
					return
				}
			}
		}
	}()
	return ctx, p, func() { close(done); cancel(nil) }
}
