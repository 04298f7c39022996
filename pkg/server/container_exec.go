package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/container"
)

// StreamServer hands out the URLs of streaming sessions (pkg/streaming's
// Server). The RPCs validate a request against the daemon's state first;
// the server validates its shape and serves the session.
type StreamServer interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// Exec returns the URL of an exec session in a running container.
func (s *Service) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	ctr, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	stream, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	// The session runs later, by the full ID: a prefix that is unique now
	// need not be then.
	req := proto.Clone(r).(*runtimeapi.ExecRequest)
	req.ContainerId = ctr.ID
	return stream.GetExec(req)
}

// runningContainer finds a container that streaming sessions may use.
func (s *Service) runningContainer(id string) (*container.Container, error) {
	ctr, err := s.visibleContainer(id)
	if err != nil {
		return nil, err
	}
	if st := ctr.Status().State; st != container.StateRunning {
		return nil, fmt.Errorf("container %s is %s, not running: %w", ctr.ID, st, errdefs.ErrFailedPrecondition)
	}
	return ctr, nil
}

func (s *Service) streamServer() (StreamServer, error) {
	if s.stream == nil {
		return nil, fmt.Errorf("the streaming server is not running: %w", errdefs.ErrUnavailable)
	}
	return s.stream, nil
}
