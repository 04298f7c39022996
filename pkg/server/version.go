package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/version"
)

// Names reported by Version.
const (
	RuntimeName       = "cri-rt"
	runtimeAPIVersion = "v1"
	// kubeAPIVersion is the legacy "version" field, fixed by the CRI.
	kubeAPIVersion = "0.1.0"
)

// Version returns the runtime name, version and CRI API version.
func (s *Service) Version(ctx context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       RuntimeName,
		RuntimeVersion:    version.Get(),
		RuntimeApiVersion: runtimeAPIVersion,
	}, nil
}
