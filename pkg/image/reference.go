package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Ref is a normalised image reference as kubelet expects it:
// "busybox" is docker.io/library/busybox:latest.
type Ref struct {
	named reference.Named
}

// ParseRef normalises s. A reference with neither tag nor digest gets
// ":latest"; one with both keeps only the digest (the tag cannot change
// what is pulled).
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("invalid image reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if c, ok := named.(reference.Canonical); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			named, _ = reference.WithDigest(reference.TrimNamed(named), c.Digest())
		}
	}
	return Ref{named: reference.TagNameOnly(named)}, nil
}

// String is the full normalised form, e.g. docker.io/library/busybox:latest.
func (r Ref) String() string { return r.named.String() }

// Host is the registry host, e.g. docker.io.
func (r Ref) Host() string { return reference.Domain(r.named) }

// Repository is the path within the registry, e.g. library/busybox.
func (r Ref) Repository() string { return reference.Path(r.named) }

// Name is host/repository.
func (r Ref) Name() string { return r.named.Name() }

// Tag returns the tag, if the reference has one.
func (r Ref) Tag() (string, bool) {
	t, ok := r.named.(reference.Tagged)
	if !ok {
		return "", false
	}
	return t.Tag(), true
}

// Digest returns the digest, if the reference has one.
func (r Ref) Digest() (digest.Digest, bool) {
	c, ok := r.named.(reference.Canonical)
	if !ok {
		return "", false
	}
	return c.Digest(), true
}

// Object is what is asked of the registry: the digest if any, else the tag.
func (r Ref) Object() string {
	if d, ok := r.Digest(); ok {
		return d.String()
	}
	t, _ := r.Tag()
	return t
}

// DigestName is the repo digest name of this repository at d.
func (r Ref) DigestName(d digest.Digest) string { return r.Name() + "@" + d.String() }

var hexID = regexp.MustCompile(`^(sha256:)?[a-f0-9]{1,64}$`)

// looksLikeID reports whether s could be an image ID or an ID prefix.
func looksLikeID(s string) bool {
	return hexID.MatchString(s) && (strings.HasPrefix(s, "sha256:") || len(s) >= 3)
}
