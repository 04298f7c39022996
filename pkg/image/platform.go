package image

import (
	"fmt"
	"runtime"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// hostPlatform is the platform images are selected for.
var hostPlatform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH, Variant: defaultVariant()}

func defaultVariant() string {
	switch runtime.GOARCH {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// selectPlatform picks the manifest of an index for this host: an exact
// match (os, architecture, variant) first, then one without a variant.
func selectPlatform(manifests []ocispec.Descriptor) (ocispec.Descriptor, error) {
	var loose *ocispec.Descriptor
	var seen []string
	for i, m := range manifests {
		p := m.Platform
		if p == nil {
			continue
		}
		seen = append(seen, p.OS+"/"+p.Architecture+variantSuffix(p.Variant))
		if p.OS != hostPlatform.OS || p.Architecture != hostPlatform.Architecture {
			continue
		}
		if p.Variant == hostPlatform.Variant {
			return m, nil
		}
		if p.Variant == "" && loose == nil {
			loose = &manifests[i]
		}
	}
	if loose != nil {
		return *loose, nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image for platform %s/%s%s in the index (it has %v): %w",
		hostPlatform.OS, hostPlatform.Architecture, variantSuffix(hostPlatform.Variant), seen, errdefs.ErrNotFound)
}

func variantSuffix(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}
