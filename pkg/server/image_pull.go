package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/image"
)

// PullImage pulls an image and returns its image reference (the image ID).
func (s *Service) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("PullImage: image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	var auth *image.PullAuth
	if a := r.GetAuth(); a != nil {
		auth = &image.PullAuth{
			Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken, ServerAddress: a.ServerAddress,
		}
	}
	rec, err := s.images.Pull(ctx, ref, auth)
	if err != nil {
		return nil, fmt.Errorf("pulling image %q: %w", ref, err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: rec.ID.String()}, nil
}
