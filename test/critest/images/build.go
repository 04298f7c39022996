package images

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// Builder builds catalogue specs. Layers are keyed (the busybox rootfs,
// the nginx layer, ...) and built once however many images use them.
type Builder struct {
	Busybox  *Busybox
	Programs map[string]string // from BuildPrograms
}

// Built is a built spec.
type Built struct {
	Spec  Spec
	Image v1.Image
	Index v1.ImageIndex // nil unless Spec.Index
	// Digest is what the tags resolve to: the index digest for indexed
	// specs, else the manifest digest.
	Digest v1.Hash
}

// Taggable returns what a tag should point at.
func (b *Built) Taggable() remote.Taggable {
	if b.Index != nil {
		return b.Index
	}
	return b.Image
}

const baseKey = "busybox"

// Build builds all specs.
func (b *Builder) Build(ctx context.Context, specs []Spec) ([]Built, error) {
	blobs, err := b.buildLayers(ctx, specs)
	if err != nil {
		return nil, err
	}
	out := make([]Built, 0, len(specs))
	for _, s := range specs {
		spec := imagebuild.Image{Config: s.Config, Format: s.Format}
		if s.Busybox {
			spec.Layers = append(spec.Layers, blobs[baseKey])
		}
		if s.Content != nil {
			spec.Layers = append(spec.Layers, blobs[s.LayerKey])
		}
		img, err := spec.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		res := Built{Spec: s, Image: img}
		var d v1.Hash
		if s.Index {
			if res.Index, err = imagebuild.Index(s.Format, img); err == nil {
				d, err = res.Index.Digest()
			}
		} else {
			d, err = img.Digest()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		res.Digest = d
		out = append(out, res)
	}
	return out, nil
}

// buildLayers builds every distinct layer the specs need, in parallel.
func (b *Builder) buildLayers(ctx context.Context, specs []Spec) (map[string]*imagebuild.Blob, error) {
	layers := map[string]*imagebuild.Layer{}
	for _, s := range specs {
		if s.Busybox && layers[baseKey] == nil {
			l, err := baseLayer(ctx, b.Busybox, b.Programs)
			if err != nil {
				return nil, err
			}
			layers[baseKey] = l
		}
		if s.Content == nil || layers[s.LayerKey] != nil {
			continue
		}
		if s.LayerKey == "" || s.LayerKey == baseKey {
			return nil, fmt.Errorf("%s: content needs a LayerKey other than %q", s.Name, baseKey)
		}
		layers[s.LayerKey] = &imagebuild.Layer{Name: s.LayerKey, Entries: s.Content(b.Programs)}
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		errs  []error
		blobs = make(map[string]*imagebuild.Blob, len(layers))
		sem   = make(chan struct{}, runtime.GOMAXPROCS(0))
	)
	for key, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			blob, err := l.Build()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("layer %s: %w", key, err))
				return
			}
			blobs[key] = blob
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return blobs, nil
}

// Target is one mirror reference to push.
type Target struct {
	Upstream []string // upstream references that map onto Mirror
	Mirror   string
	Built    *Built
}

// Plan maps the built images onto registry (see MirrorRef). Two upstream
// references landing on the same mirror reference is fine when they are
// the same image (registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9 both
// become REGISTRY/pause:3.9, and critest wants them identical) and an
// error otherwise. Targets are sorted by mirror reference.
func Plan(built []Built, registry string) ([]Target, error) {
	byMirror := map[string]*Target{}
	for i := range built {
		b := &built[i]
		for _, up := range b.Spec.Refs {
			m, err := MirrorRef(up, registry)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", b.Spec.Name, err)
			}
			t := byMirror[m]
			if t == nil {
				t = &Target{Mirror: m, Built: b}
				byMirror[m] = t
			} else if t.Built.Digest != b.Digest {
				return nil, fmt.Errorf("mirror collision: %s (%s) and %v (%s) both map to %s",
					up, b.Digest, t.Upstream, t.Built.Digest, m)
			}
			t.Upstream = append(t.Upstream, up)
		}
	}
	out := make([]Target, 0, len(byMirror))
	for _, t := range byMirror {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mirror < out[j].Mirror })
	return out, nil
}

// Push writes all targets in one batch, so shared blobs go up once.
func Push(ctx context.Context, targets []Target, insecure bool) error {
	todo := make(map[string]remote.Taggable, len(targets))
	for _, t := range targets {
		todo[t.Mirror] = t.Built.Taggable()
	}
	return imagebuild.PushAll(ctx, todo, insecure)
}
