package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// PortForward returns the URL of a port-forward session into a ready pod's
// network namespace. The ports are given when the client connects (kubelet
// sends none here); any listed must be valid.
func (s *Service) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.visibleSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if st := sb.Status().State; st != sandbox.StateReady {
		return nil, fmt.Errorf("sandbox %s is %s, not ready: %w", sb.ID, st, errdefs.ErrFailedPrecondition)
	}
	for _, p := range r.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port %d is out of range: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	stream, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	req := proto.Clone(r).(*runtimeapi.PortForwardRequest)
	req.PodSandboxId = sb.ID
	return stream.GetPortForward(req)
}
