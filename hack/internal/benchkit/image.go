package benchkit

import (
	"encoding/json"
	"runtime"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is a generated image: layer blobs on disk, config and manifest in
// memory, ready for Registry.Push.
type Image struct {
	Tag      string
	Layers   []*Layer
	Config   []byte
	Manifest []byte
}

// ConfigDigest is the digest of the image config.
func (im *Image) ConfigDigest() digest.Digest { return digest.FromBytes(im.Config) }

// Sizes returns the compressed and uncompressed (tar) bytes of the layers.
func (im *Image) Sizes() (compressed, uncompressed int64) {
	return LayerSizes(im.Layers)
}

// LayerSizes returns the compressed and uncompressed (tar) bytes of ls,
// what a measurement on those layers moves.
func LayerSizes(ls []*Layer) (compressed, uncompressed int64) {
	for _, l := range ls {
		compressed += l.Size
		uncompressed += l.USize
	}
	return compressed, uncompressed
}

// LayerPaths returns the blob files of ls, for the gunzip and unpack
// floors.
func LayerPaths(ls []*Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Path
	}
	return out
}

// NewImage builds the config and OCI manifest of an image of layers. The
// config carries the diff IDs the puller checks each unpacked layer against.
func NewImage(tag string, layers []*Layer) (*Image, error) {
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
	return &Image{Tag: tag, Layers: layers, Config: cb, Manifest: mb}, nil
}
