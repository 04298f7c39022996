package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/network"
)

// Reasons reported in runtime conditions.
const (
	reasonNetworkNotReady = "NetworkPluginNotReady"
)

// Status reports the runtime and network conditions. NetworkReady is true
// only while a valid CNI config is present in the conf dir.
func (s *Service) Status(ctx context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	networkCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.networkStatus(); err != nil {
		networkCond.Status = false
		networkCond.Reason = reasonNetworkNotReady
		networkCond.Message = "cni config not loaded: " + err.Error()
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeCond, networkCond}},
	}
	for _, name := range s.config.RuntimeNames() {
		features := s.handlerFeatures(ctx, name)
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: name, Features: features})
		if name == s.config.DefaultRuntime {
			// An empty name denotes the default handler.
			resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: "", Features: features})
		}
	}
	// Supplemental groups follow the pod's policy (Merge or Strict) and the
	// effective user is reported in ContainerStatus.
	resp.Features = &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}
	if r.GetVerbose() {
		resp.Info = map[string]string{
			"config": toJSON(s.config.Redacted()),
			"oom":    toJSON(s.oom),
		}
		if s.network != nil {
			resp.Info["cniNetwork"] = toJSON(s.network.ConfName())
		}
		s.mu.Lock()
		resp.Info["podCIDR"] = toJSON(s.podCIDR)
		s.mu.Unlock()
	}
	return resp, nil
}

func (s *Service) networkStatus() error {
	if s.network != nil {
		return s.network.Status()
	}
	_, _, err := network.LoadDefaultNetwork(s.config.CNI.ConfDir)
	return err
}

// handlerFeatures reports what a runtime handler really supports, from the
// runtime's own `features` output, so kubelet and critest enable only what
// works.
func (s *Service) handlerFeatures(ctx context.Context, name string) *runtimeapi.RuntimeHandlerFeatures {
	f := &runtimeapi.RuntimeHandlerFeatures{}
	if s.runtimes == nil {
		return f
	}
	rt, err := s.runtimes.Get(name)
	if err != nil {
		return f
	}
	f.RecursiveReadOnlyMounts = rt.SupportsMountOption(ctx, "rro")
	f.UserNamespaces = rt.SupportsIDMapMounts(ctx)
	return f
}
