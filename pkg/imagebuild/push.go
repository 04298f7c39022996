package imagebuild

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ParseReference parses an image reference ("host:port/repo:tag"). A
// registry on a loopback address is marked insecure so it is reached over
// plain HTTP (local test registries have no TLS); insecure forces that for
// any host.
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: parsing %q: %w", ref, err)
	}
	if !insecure && !IsLoopbackRegistry(r.Context().RegistryStr()) {
		return r, nil
	}
	return name.ParseReference(ref, name.StrictValidation, name.Insecure)
}

// IsLoopbackRegistry reports whether a registry host[:port] names this
// machine (localhost, 127.0.0.0/8 or ::1).
func IsLoopbackRegistry(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Push writes an image to ref.
func Push(ctx context.Context, ref string, img v1.Image, insecure bool, opts ...remote.Option) error {
	r, err := ParseReference(ref, insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return fmt.Errorf("imagebuild: pushing %s: %w", ref, err)
	}
	return nil
}

// PushIndex writes an image index, and the images it references, to ref.
func PushIndex(ctx context.Context, ref string, idx v1.ImageIndex, insecure bool, opts ...remote.Option) error {
	r, err := ParseReference(ref, insecure)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, idx, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return fmt.Errorf("imagebuild: pushing %s: %w", ref, err)
	}
	return nil
}

// PushAll writes many images and indexes (v1.Image or v1.ImageIndex values)
// in one go. Blobs shared between them are uploaded once, which is much
// faster than pushing each reference separately.
func PushAll(ctx context.Context, todo map[string]remote.Taggable, insecure bool, opts ...remote.Option) error {
	refs := make(map[name.Reference]remote.Taggable, len(todo))
	for ref, t := range todo {
		r, err := ParseReference(ref, insecure)
		if err != nil {
			return err
		}
		refs[r] = t
	}
	if err := remote.MultiWrite(refs, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return fmt.Errorf("imagebuild: pushing %d references: %w", len(refs), err)
	}
	return nil
}
