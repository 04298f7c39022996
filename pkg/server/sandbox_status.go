package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// PodSandboxStatus returns a sandbox's state, network and namespaces.
func (s *Service) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.visibleSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: toCRISandboxStatus(sb)}
	if r.GetVerbose() {
		st := sb.Status()
		info := map[string]any{
			"pid": st.Pid, "netnsPath": sb.NetNSPath, "name": sb.Name,
			"runtimeHandler": sb.RuntimeHandler, "image": s.config.SandboxImage, "config": sb.Config,
		}
		if st.Network != nil {
			info["cniResult"] = st.Network.Result
		}
		if st.Resources != nil {
			info["resources"] = jsonRaw(st.Resources)
		}
		if b, err := os.ReadFile(filepath.Join(s.sandboxes.Dir(sb.ID), "config.json")); err == nil {
			info["runtimeSpec"] = jsonRaw(b)
		}
		resp.Info = map[string]string{"info": toJSON(info)}
	}
	return resp, nil
}

// visibleSandbox finds a sandbox that has finished being created; one in
// creation is not visible yet.
func (s *Service) visibleSandbox(id string) (*sandbox.Sandbox, error) {
	sb, err := s.sandboxStore.Get(id)
	if err != nil {
		return nil, err
	}
	if sb.Status().State == sandbox.StateCreating {
		return nil, fmt.Errorf("sandbox %q: %w", id, errdefs.ErrNotFound)
	}
	return sb, nil
}

func criSandboxState(st sandbox.State) runtimeapi.PodSandboxState {
	if st == sandbox.StateReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func toCRISandboxStatus(sb *sandbox.Sandbox) *runtimeapi.PodSandboxStatus {
	st := sb.Status()
	out := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       sb.Config.GetMetadata(),
		State:          criSandboxState(st.State),
		CreatedAt:      sb.CreatedAt.UnixNano(),
		Labels:         sb.Config.GetLabels(),
		Annotations:    sb.Config.GetAnnotations(),
		RuntimeHandler: sb.RuntimeHandler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if st.Network != nil && !st.NetworkReleased && len(st.Network.IPs) > 0 {
		out.Network.Ip = st.Network.IPs[0]
		for _, ip := range st.Network.IPs[1:] {
			out.Network.AdditionalIps = append(out.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return out
}
