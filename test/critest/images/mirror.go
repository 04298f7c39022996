package images

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
)

// Canonical returns the fully qualified form of an upstream reference
// ("busybox" -> "index.docker.io/library/busybox:latest"), as a runtime
// records it in repo tags.
func Canonical(upstream string) (string, error) {
	ref, err := name.ParseReference(upstream)
	if err != nil {
		return "", err
	}
	return ref.Name(), nil
}

// MirrorRef maps an upstream tag reference onto registry by replacing the
// registry host and keeping repository path and tag:
// registry.k8s.io/e2e-test-images/busybox:1.29-2 becomes
// REGISTRY/e2e-test-images/busybox:1.29-2, and Docker Hub short names keep
// their implicit "library/" (busybox -> REGISTRY/library/busybox:latest).
// That is the layout a containerd-style mirror (hosts.toml pointing
// registry.k8s.io at http://REGISTRY) and critest's --registry-prefix
// both expect. Digest references cannot be mirrored by tag and are
// rejected.
func MirrorRef(upstream, registry string) (string, error) {
	ref, err := name.ParseReference(upstream)
	if err != nil {
		return "", err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return "", fmt.Errorf("%s is not a tag reference", upstream)
	}
	return registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr(), nil
}
