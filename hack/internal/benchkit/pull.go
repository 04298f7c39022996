package benchkit

import (
	"context"
	"fmt"
)

// NewLayerMB is the size of the one layer the second pull image does not
// share with the first: an application update on a cached base.
const NewLayerMB = 50

// PullSpec describes the two pull images both benchmarks use: the first of
// Layers layers of SizeMB in all, the second its first Layers-1 layers
// plus a new one of NewLayerMB. The same spec gives the same bytes and
// digests, which is what lets hack/bench cache them and compare runs.
type PullSpec struct {
	Seed   uint64 // everything generated follows from it
	SizeMB int    // uncompressed size of the first image, in 10^6 bytes
	Layers int    // layers of the first image, at least 2
}

// layerSpecs lists the Layers+1 layers to generate, the new one last.
func (s PullSpec) layerSpecs() []layerSpec {
	per := int64(s.SizeMB) * 1e6 / int64(s.Layers)
	var specs []layerSpec
	for i := range s.Layers + 1 {
		ls := layerSpec{idx: i, seed: s.Seed*1000 + uint64(i), target: per}
		if i == s.Layers {
			ls.target = NewLayerMB * 1e6
		}
		specs = append(specs, ls)
	}
	return specs
}

// CacheDirName names a directory to keep the generated layers in between
// runs; it changes whenever the spec or the generator's output does.
func (s PullSpec) CacheDirName() string {
	return fmt.Sprintf("bench-layers-v%d-seed%d-%dMBx%d+%dMB", genVersion, s.Seed, s.SizeMB, s.Layers, NewLayerMB)
}

// GenerateLayers writes the Layers+1 layers of the spec into dir (the new
// layer of the second image last), several at once.
func (s PullSpec) GenerateLayers(ctx context.Context, dir string) ([]*Layer, error) {
	return generateLayers(ctx, dir, s.layerSpecs(), vocabulary(s.Seed))
}

// NewPullImages builds the two pull images, tags "1" and "2", from the
// Layers+1 layers GenerateLayers wrote: the first has all but the last,
// the second shares all of the first's but its last and adds the last.
func NewPullImages(layers []*Layer) (img, img2 *Image, err error) {
	n := len(layers) - 1
	if img, err = NewImage("1", layers[:n]); err != nil {
		return nil, nil, err
	}
	shared := append(layers[:n-1:n-1], layers[n])
	if img2, err = NewImage("2", shared); err != nil {
		return nil, nil, err
	}
	return img, img2, nil
}
