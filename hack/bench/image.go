// The big image's layout is hack/pullbench's, copied.

package main

import (
	"context"
	"encoding/json"
	"runtime"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// image is a generated image: layer blobs on disk, config and manifest in
// memory.
type image struct {
	Tag      string
	Layers   []*layer
	Config   []byte
	Manifest []byte
}

// ConfigDigest is the digest of the image config.
func (im *image) ConfigDigest() digest.Digest { return digest.FromBytes(im.Config) }

// Sizes returns the compressed and uncompressed (tar) bytes of the layers.
func (im *image) Sizes() (compressed, uncompressed int64) {
	return layerSizes(im.Layers)
}

func layerSizes(ls []*layer) (compressed, uncompressed int64) {
	for _, l := range ls {
		compressed += l.Size
		uncompressed += l.USize
	}
	return compressed, uncompressed
}

// generateLayers writes the layers of specs into dir, as many at once as
// there are CPUs: each is one sequential tar+gzip stream, so this is what
// keeps generation from taking minutes.
func generateLayers(ctx context.Context, dir string, specs []layerSpec, vocab []string) ([]*layer, error) {
	out := make([]*layer, len(specs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i, s := range specs {
		g.Go(func() error {
			l, err := writeLayer(gctx, dir, s, vocab)
			out[i] = l
			return err
		})
	}
	return out, g.Wait()
}

// newImage builds the config and OCI manifest of an image of layers. The
// config carries the diff IDs the puller checks each unpacked layer against.
func newImage(tag string, layers []*layer) (*image, error) {
	cfg := ocispec.Image{
		Created:  &mtime,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l.Digest, Size: l.Size})
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &image{Tag: tag, Layers: layers, Config: cb, Manifest: mb}, nil
}
