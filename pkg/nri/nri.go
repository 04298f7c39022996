// Package nri serves the runtime side of the Node Resource Interface
// (github.com/containerd/nri), the plugin protocol containerd and CRI-O
// serve: plugins connect to a unix socket, are synchronized with the pods
// and containers that exist, and are then told of each lifecycle step.
// At CreateContainer they may adjust the new container's OCI spec, and at
// any time they may ask for resource updates of running containers.
//
// The sandbox and container controllers call the hooks through narrow
// interfaces (sandbox.NRIHooks, container.NRIHooks) at the points where
// the contract needs them:
//
//   - RunPodSandbox and CreateContainer are called while the object is
//     still Creating, hidden from List and Status; a plugin's error fails
//     the RPC and the controller's rollback leaves nothing behind.
//   - StartContainer is called before the process starts; its error fails
//     StartContainer.
//   - Stop and Remove notices are told once, and their errors are only
//     logged: the runtime's own work is done by then.
//   - Each hook and the record change it describes happen while plugin
//     synchronization is held back (BlockSync), so a plugin that connects
//     meanwhile finds the object either in its Synchronize snapshot or in a
//     later hook, never in neither.
package nri

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	nrilog "github.com/containerd/nri/pkg/log"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/ociruntime"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
	"github.com/cri-rt/cri-rt/pkg/version"
)

// State is what NRI needs of the runtime: the records it lists for
// synchronization and describes to plugins, the bundle directories where
// the specs are, and the runtimes that apply plugins' updates.
type State struct {
	Sandboxes      *sandbox.Controller
	SandboxStore   *sandbox.Store
	Containers     *container.Controller
	ContainerStore *container.Store
	Runtimes       *ociruntime.Set
}

// NRI relays lifecycle events to NRI plugins. It implements
// sandbox.NRIHooks and container.NRIHooks. Until Start, no plugin is
// connected and every hook is a no-op that succeeds.
type NRI struct {
	cfg     config.NRIConfig
	a       *adaptation.Adaptation
	st      State
	started bool
}

// New prepares NRI from its configuration. It listens nowhere yet: Bind
// the runtime's state, then Start.
func New(cfg config.NRIConfig) (*NRI, error) {
	nrilog.Set(klogLogger{})
	n := &NRI{cfg: cfg}
	a, err := adaptation.New("cri-rt", version.Get(), n.synchronize, n.updateContainers,
		adaptation.WithSocketPath(cfg.SocketPath),
		// cri-rt serves the plugins that connect to the socket and launches
		// none itself: an empty plugin path names no directory, so
		// nothing is discovered (there is no plugin_path key).
		adaptation.WithPluginPath(""),
	)
	if err != nil {
		return nil, fmt.Errorf("NRI: %w", err)
	}
	n.a = a
	return n, nil
}

// Bind connects the runtime's state; it must be called before Start and
// before any hook that reaches a plugin.
func (n *NRI) Bind(st State) { n.st = st }

// SandboxHooks returns n as the sandbox controller's hooks, or a nil
// interface when n is nil (NRI disabled).
func (n *NRI) SandboxHooks() sandbox.NRIHooks {
	if n == nil {
		return nil
	}
	return n
}

// ContainerHooks returns n as the container controller's hooks, or a nil
// interface when n is nil (NRI disabled).
func (n *NRI) ContainerHooks() container.NRIHooks {
	if n == nil {
		return nil
	}
	return n
}

// Start listens on the socket and accepts plugins. A socket that another
// live process serves (another runtime's NRI) is left alone: cri-rt then
// runs without NRI and says so, rather than take the node's plugins from
// their runtime or refuse to run. Any other failure is an error.
func (n *NRI) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if socketInUse(n.cfg.SocketPath) {
		logger.Error(nil, "NRI socket is served by another live process; running without NRI", "socket", n.cfg.SocketPath)
		return nil
	}
	// Process-wide settings of the NRI library; cri-rt has one adaptation.
	adaptation.SetPluginRegistrationTimeout(n.cfg.PluginRegistrationTimeout.Std())
	adaptation.SetPluginRequestTimeout(n.cfg.PluginRequestTimeout.Std())
	if err := n.a.Start(); err != nil {
		return fmt.Errorf("starting NRI on %s: %w", n.cfg.SocketPath, err)
	}
	n.started = true
	logger.Info("Serving NRI plugins", "socket", n.cfg.SocketPath)
	return nil
}

// Stop disconnects the plugins and removes the socket.
func (n *NRI) Stop() {
	if n.started {
		n.a.Stop()
		n.started = false
	}
}

// BlockSync holds back the synchronization of connecting plugins until
// the returned func is called.
func (n *NRI) BlockSync() func() {
	b := n.a.BlockPluginSync()
	return b.Unblock
}

// socketInUse reports whether something accepts connections on path.
func socketInUse(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return false
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// klogLogger sends the NRI library's messages to the daemon's log.
type klogLogger struct{}

func (klogLogger) Debugf(_ context.Context, format string, args ...any) {
	klog.V(4).InfoS("NRI: " + fmt.Sprintf(format, args...))
}

// Infof is about plugins connecting and going: worth the default level.
func (klogLogger) Infof(_ context.Context, format string, args ...any) {
	klog.InfoS("NRI: " + fmt.Sprintf(format, args...))
}

func (klogLogger) Warnf(_ context.Context, format string, args ...any) {
	klog.InfoS("WARNING: NRI: " + fmt.Sprintf(format, args...))
}

func (klogLogger) Errorf(_ context.Context, format string, args ...any) {
	klog.ErrorS(fmt.Errorf(format, args...), "NRI")
}
