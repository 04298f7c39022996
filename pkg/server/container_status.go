package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/container"
)

// ContainerStatus returns a container's state, times, exit, image, mounts
// and user.
func (s *Service) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	ctr, err := s.visibleContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.toCRIContainerStatus(ctr)}
	if r.GetVerbose() {
		st := ctr.Status()
		info := map[string]any{"pid": st.Pid, "monitorPid": st.MonitorPid, "sandboxID": ctr.SandboxID, "name": ctr.Name}
		if b, err := os.ReadFile(filepath.Join(s.containers.Dir(ctr.ID), "config.json")); err == nil {
			info["runtimeSpec"] = jsonRaw(b)
		}
		resp.Info = map[string]string{"info": toJSON(info)}
	}
	return resp, nil
}

func (s *Service) visibleContainer(id string) (*container.Container, error) {
	ctr, err := s.containerStore.Get(id)
	if err != nil {
		return nil, err
	}
	if ctr.Status().State == container.StateCreating {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return ctr, nil
}

func criContainerState(st container.State) runtimeapi.ContainerState {
	switch st {
	case container.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.StateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.StateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func nanos(t interface{ UnixNano() int64 }, zero bool) int64 {
	if zero {
		return 0
	}
	return t.UnixNano()
}

func (s *Service) toCRIContainerStatus(ctr *container.Container) *runtimeapi.ContainerStatus {
	st := ctr.Status()
	out := &runtimeapi.ContainerStatus{
		Id:          ctr.ID,
		Metadata:    ctr.Config.GetMetadata(),
		State:       criContainerState(st.State),
		CreatedAt:   ctr.CreatedAt.UnixNano(),
		StartedAt:   nanos(st.StartedAt, st.StartedAt.IsZero()),
		FinishedAt:  nanos(st.FinishedAt, st.FinishedAt.IsZero()),
		ExitCode:    st.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: ctr.ImageName, UserSpecifiedImage: ctr.Config.GetImage().GetUserSpecifiedImage()},
		ImageRef:    ctr.ImageRef,
		ImageId:     ctr.ImageID,
		Reason:      st.Reason,
		Message:     st.Message,
		Labels:      ctr.Config.GetLabels(),
		Annotations: ctr.Config.GetAnnotations(),
		Mounts:      statusMounts(ctr),
		LogPath:     ctr.LogPath,
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: int64(ctr.UID), Gid: int64(ctr.GID), SupplementalGroups: toInt64s(ctr.AdditionalGids),
		}},
	}
	if res, err := container.CRIResources(st.Resources); err == nil {
		out.Resources = res
	} else {
		klog.V(4).InfoS("Container resources unreadable", "container", ctr.ID, "err", err)
	}
	return out
}

func toInt64s(in []uint32) []int64 {
	out := make([]int64, len(in))
	for i, v := range in {
		out[i] = int64(v)
	}
	return out
}

// statusMounts are the request's mounts, with the image ID of each image
// volume filled in.
func statusMounts(ctr *container.Container) []*runtimeapi.Mount {
	if len(ctr.ImageVolumeRefs) == 0 {
		return ctr.Config.GetMounts()
	}
	out := make([]*runtimeapi.Mount, 0, len(ctr.Config.GetMounts()))
	for _, m := range ctr.Config.GetMounts() {
		if ref, ok := ctr.ImageVolumeRefs[m.GetContainerPath()]; ok && m.GetImage() != nil {
			m = proto.Clone(m).(*runtimeapi.Mount)
			m.Image.ImageRef = ref
		}
		out = append(out, m)
	}
	return out
}
