package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/container"
)

// ListContainers lists containers, filtered by ID (or prefix), state,
// sandbox and label selector.
func (s *Service) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, ctr := range s.containerStore.List() {
		st := ctr.Status()
		if st.State == container.StateCreating {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(ctr.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(ctr.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != criContainerState(st.State) {
			continue
		}
		if !labelsMatch(ctr.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: ctr.ID, PodSandboxId: ctr.SandboxID, Metadata: ctr.Config.GetMetadata(),
			Image:    &runtimeapi.ImageSpec{Image: ctr.ImageName, UserSpecifiedImage: ctr.Config.GetImage().GetUserSpecifiedImage()},
			ImageRef: ctr.ImageRef, ImageId: ctr.ImageID, State: criContainerState(st.State),
			CreatedAt: ctr.CreatedAt.UnixNano(), Labels: ctr.Config.GetLabels(), Annotations: ctr.Config.GetAnnotations(),
		})
	}
	return resp, nil
}
