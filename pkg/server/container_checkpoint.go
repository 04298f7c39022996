package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CheckpointContainer checkpoints a running container into an archive
// with CRIU (the container keeps running). Where CRIU is missing or does
// not work on the kernel, it fails with FailedPrecondition naming why.
func (s *Service) CheckpointContainer(ctx context.Context, r *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	if err := s.containers.Checkpoint(ctx, r.GetContainerId(), r.GetLocation()); err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointContainerResponse{}, nil
}
