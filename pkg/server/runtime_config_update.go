package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/network"
)

// UpdateRuntimeConfig takes the node's pod CIDR from kubelet. With a CNI
// config template configured, it writes the network config from it (the
// node then becomes network-ready); otherwise it records the CIDR, shown in
// Status' verbose info.
func (s *Service) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := r.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	s.mu.Lock()
	s.podCIDR = cidr
	s.mu.Unlock()
	if cidr == "" || s.config.CNI.ConfTemplate == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	if err := network.WriteFromTemplate(s.config.CNI.ConfTemplate, s.config.CNI.ConfDir, cidr); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).Info("Wrote the CNI config from the template", "podCIDR", cidr, "dir", s.config.CNI.ConfDir)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
