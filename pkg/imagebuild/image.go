package imagebuild

import (
	"fmt"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Format selects the media type family of manifests, configs and layers.
type Format int

const (
	// OCI uses the OCI image-spec media types.
	OCI Format = iota
	// Docker uses the Docker schema 2 media types, as `docker push` does.
	Docker
)

func (f Format) String() string {
	if f == Docker {
		return "docker"
	}
	return "oci"
}

func (f Format) manifestType() types.MediaType {
	if f == Docker {
		return types.DockerManifestSchema2
	}
	return types.OCIManifestSchema1
}

func (f Format) configType() types.MediaType {
	if f == Docker {
		return types.DockerConfigJSON
	}
	return types.OCIConfigJSON
}

func (f Format) layerType() types.MediaType {
	if f == Docker {
		return types.DockerLayer
	}
	return types.OCILayer
}

func (f Format) indexType() types.MediaType {
	if f == Docker {
		return types.DockerManifestList
	}
	return types.OCIImageIndex
}

// Platform identifies the OS/architecture an image runs on.
type Platform struct {
	OS           string
	Architecture string
	Variant      string
}

// LinuxAMD64 is the default platform.
var LinuxAMD64 = Platform{OS: "linux", Architecture: "amd64"}

// Config is the runtime part of the image configuration.
type Config struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	User         string
	WorkingDir   string
	ExposedPorts []string // e.g. "80/tcp"
	Volumes      []string
	Labels       map[string]string
	StopSignal   string
}

// Image describes an image as a stack of layer blobs plus configuration.
type Image struct {
	Layers   []*Blob
	Config   Config
	Platform Platform // zero value means LinuxAMD64
	Format   Format
	Created  time.Time // zero means Epoch
}

// Build assembles the image. The result is deterministic in its inputs.
func (im *Image) Build() (v1.Image, error) {
	created := im.Created
	if created.IsZero() {
		created = Epoch
	}
	plat := im.Platform
	if plat == (Platform{}) {
		plat = LinuxAMD64
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, im.Format.manifestType()), im.Format.configType())
	adds := make([]mutate.Addendum, 0, len(im.Layers))
	for _, b := range im.Layers {
		adds = append(adds, mutate.Addendum{
			Layer:     b.V1Layer(im.Format.layerType()),
			MediaType: im.Format.layerType(),
			History: v1.History{
				Created:   v1.Time{Time: created},
				CreatedBy: "imagebuild: " + b.Name,
			},
		})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: appending layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config = im.Config.v1()
	return mutate.ConfigFile(img, cf)
}

func (c Config) v1() v1.Config {
	out := v1.Config{
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		Env:        c.Env,
		User:       c.User,
		WorkingDir: c.WorkingDir,
		Labels:     c.Labels,
		StopSignal: c.StopSignal,
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			out.ExposedPorts[p] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		out.Volumes = map[string]struct{}{}
		for _, v := range c.Volumes {
			out.Volumes[v] = struct{}{}
		}
	}
	return out
}

// Index wraps images into an image index of the given format, one entry per
// image, each annotated with the platform from the image's config. Entries
// are ordered by platform so the index digest does not depend on argument
// order.
func Index(format Format, images ...v1.Image) (v1.ImageIndex, error) {
	type entry struct {
		key string
		add mutate.IndexAddendum
	}
	entries := make([]entry, 0, len(images))
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		entries = append(entries, entry{
			key: p.String(),
			add: mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}},
		})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	for i := 1; i < len(entries); i++ {
		if entries[i].key == entries[i-1].key {
			return nil, fmt.Errorf("imagebuild: two images for platform %s", entries[i].key)
		}
	}
	idx := mutate.IndexMediaType(empty.Index, format.indexType())
	for _, e := range entries {
		idx = mutate.AppendManifests(idx, e.add)
	}
	return idx, nil
}
