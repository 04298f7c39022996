package server

import (
	"context"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Attach returns the URL of a session attached to a running container's
// stdio (through its monitor).
func (s *Service) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	ctr, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	stream, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	req := proto.Clone(r).(*runtimeapi.AttachRequest)
	req.ContainerId = ctr.ID
	return stream.GetAttach(req)
}
