package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/container"
)

// ListContainerStats returns the stats of the containers matching the
// filter (ID or prefix, sandbox, labels).
func (s *Service) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, ctr := range s.containerStore.List() {
		if ctr.Status().State == container.StateCreating {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(ctr.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(ctr.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		if !labelsMatch(ctr.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Stats = append(resp.Stats, s.containers.Stats(ctx, ctr))
	}
	return resp, nil
}
