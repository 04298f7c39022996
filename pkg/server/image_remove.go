package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveImage removes a tag (the image goes with its last tag), or the
// whole image when given its ID or a repo digest. Blobs and layers nothing
// uses any more are freed; layers under a container stay. Removing a
// missing image succeeds (CRI: idempotent).
func (s *Service) RemoveImage(ctx context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	q := r.GetImage().GetImage()
	if q == "" {
		return nil, fmt.Errorf("RemoveImage: image is empty: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.images.Remove(ctx, q); err != nil {
		return nil, fmt.Errorf("removing image %q: %w", q, err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}
