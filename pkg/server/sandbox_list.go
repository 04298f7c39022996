package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// ListPodSandbox lists sandboxes, filtered by ID (or ID prefix), state and
// label selector.
func (s *Service) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range s.sandboxStore.List() {
		st := sb.Status()
		if st.State == sandbox.StateCreating {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != criSandboxState(st.State) {
			continue
		}
		if !labelsMatch(sb.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: sb.ID, Metadata: sb.Config.GetMetadata(), State: criSandboxState(st.State),
			CreatedAt: sb.CreatedAt.UnixNano(), Labels: sb.Config.GetLabels(),
			Annotations: sb.Config.GetAnnotations(), RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return resp, nil
}

// labelsMatch reports whether labels has every key=value of selector.
func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
