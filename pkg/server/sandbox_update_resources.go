package server

import (
	"context"
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// UpdatePodSandboxResources records the pod-level resources kubelet has
// set after an in-place resize. kubelet owns and resizes the pod cgroup
// itself; the runtime keeps the values for status and for plugins (NRI),
// as containerd does with runc.
func (s *Service) UpdatePodSandboxResources(ctx context.Context, r *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	sb, err := s.visibleSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	enc := func(m *runtimeapi.LinuxContainerResources) json.RawMessage {
		if m == nil {
			return nil
		}
		b, _ := protojson.Marshal(m)
		return b
	}
	if err := sb.Update(func(st *sandbox.Status) error {
		st.Resources, st.Overhead = enc(r.GetResources()), enc(r.GetOverhead())
		return nil
	}); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
