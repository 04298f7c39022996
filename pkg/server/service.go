// Package server implements the CRI RuntimeService and ImageService. Each RPC
// lives in its own <object>_<verb>.go file and stays thin: it validates the
// request, calls the domain packages and converts the result. Errors are
// returned as wrapped errdefs sentinels; pkg/instrument turns them into gRPC
// codes at the boundary.
package server

import (
	"encoding/json"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/events"
	"github.com/cri-rt/cri-rt/pkg/image"
	"github.com/cri-rt/cri-rt/pkg/network"
	"github.com/cri-rt/cri-rt/pkg/ociruntime"
	"github.com/cri-rt/cri-rt/pkg/oom"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// Options are the dependencies of a Service.
type Options struct {
	Config *config.Config
	// OOM tells whether the daemon could not lower its own oom_score_adj, so
	// container values below the floor must be clamped.
	OOM oom.Restriction
	// Images is the image service.
	Images *image.Service
	// Sandboxes runs pod sandboxes; SandboxStore holds them.
	Sandboxes    *sandbox.Controller
	SandboxStore *sandbox.Store
	// Network is the CNI manager (for Status).
	Network *network.Manager
	// Runtimes are the OCI runtime handlers.
	Runtimes *ociruntime.Set
	// Events, when set, receives lifecycle events for GetContainerEvents.
	Events *events.Broker
	// Containers runs containers; ContainerStore holds them.
	Containers     *container.Controller
	ContainerStore *container.Store
	// Stream serves exec, attach and port-forward sessions.
	Stream StreamServer
}

// Service serves both CRI services. RPCs not built yet fall through to the
// embedded Unimplemented servers, which answer codes.Unimplemented naming the
// method.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	config *config.Config
	oom    oom.Restriction
	images *image.Service

	sandboxes    *sandbox.Controller
	sandboxStore *sandbox.Store
	network      *network.Manager
	runtimes     *ociruntime.Set

	containers     *container.Controller
	containerStore *container.Store
	events         *events.Broker

	mu      sync.Mutex
	podCIDR string // from UpdateRuntimeConfig
	stream  StreamServer
}

var (
	_ runtimeapi.RuntimeServiceServer = (*Service)(nil)
	_ runtimeapi.ImageServiceServer   = (*Service)(nil)
)

// New builds a Service.
func New(opts Options) (*Service, error) {
	svc := &Service{
		config: opts.Config, oom: opts.OOM, images: opts.Images,
		sandboxes: opts.Sandboxes, sandboxStore: opts.SandboxStore, network: opts.Network, runtimes: opts.Runtimes,
		containers: opts.Containers, containerStore: opts.ContainerStore, stream: opts.Stream,
	}
	svc.events = opts.Events
	if svc.events == nil {
		svc.events = events.NewBroker()
	}
	if opts.Containers != nil {
		opts.Containers.OnEvent = svc.publishEvent
	}
	if opts.Sandboxes != nil {
		opts.Sandboxes.OnEvent = svc.publishEvent
	}
	return svc, nil
}

// toJSON renders verbose info values; the CRI wants JSON strings there.
func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return `{"error":` + jsonString(err.Error()) + `}`
	}
	return string(b)
}

// jsonRaw embeds already-encoded JSON in verbose info.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
