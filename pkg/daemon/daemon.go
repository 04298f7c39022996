// Package daemon runs cri-rt: it prepares the root and state directories,
// takes the root lock, serves the CRI on its unix socket, and shuts down
// without touching running containers.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/content"
	"github.com/cri-rt/cri-rt/pkg/debug"
	"github.com/cri-rt/cri-rt/pkg/events"
	"github.com/cri-rt/cri-rt/pkg/image"
	"github.com/cri-rt/cri-rt/pkg/instrument"
	"github.com/cri-rt/cri-rt/pkg/metadata"
	"github.com/cri-rt/cri-rt/pkg/metrics"
	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/network"
	"github.com/cri-rt/cri-rt/pkg/nri"
	"github.com/cri-rt/cri-rt/pkg/ociruntime"
	"github.com/cri-rt/cri-rt/pkg/oom"
	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
	"github.com/cri-rt/cri-rt/pkg/server"
	"github.com/cri-rt/cri-rt/pkg/snapshot"
	"github.com/cri-rt/cri-rt/pkg/streaming"
)

// ShutdownTimeout bounds how long in-flight RPCs may run after a stop
// signal before they are cut off.
const ShutdownTimeout = 10 * time.Second

// Daemon is one running cri-rt.
type Daemon struct {
	cfg       *config.Config
	lock      *rootLock
	db        *bolt.DB
	snapshots *snapshot.Store
	watcher   *monitor.Watcher
	grpc      *grpc.Server
	ln        net.Listener
	metrics   *metrics.Server
	debug     *debug.Server
	stream    *streaming.Server
	nri       *nri.NRI // nil when [nri] enable = false
}

// Start prepares the directories and the lock and begins serving. It
// returns once the socket accepts connections.
func Start(ctx context.Context, cfg *config.Config) (_ *Daemon, retErr error) {
	logger := klog.FromContext(ctx)
	// root is 0711 like containerd's: others may traverse to paths under it
	// that are handed to containers, but not list it.
	if err := os.MkdirAll(cfg.Root, 0o711); err != nil {
		return nil, fmt.Errorf("creating root %s: %w", cfg.Root, err)
	}
	if err := os.MkdirAll(cfg.State, 0o711); err != nil {
		return nil, fmt.Errorf("creating state %s: %w", cfg.State, err)
	}
	lock, err := acquireRootLock(cfg.Root)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, lock: lock}
	defer func() {
		if retErr != nil {
			d.release(context.Background())
		}
	}()

	restriction := applyOOMScore(logger, cfg.OOMScore)

	reg := metrics.NewRegistry()
	inst := instrument.NewMetrics(reg)
	set := metrics.NewSet(reg)
	recoveryStart := time.Now()
	images, err := d.openImageService(ctx, cfg, set)
	if err != nil {
		return nil, err
	}
	pods, err := d.openPodServices(ctx, cfg, restriction, images, set)
	if err != nil {
		return nil, err
	}
	set.Recovered(time.Since(recoveryStart))
	if d.nri != nil {
		// After recovery, so that the first plugins are synchronized with
		// what really runs.
		if err := d.nri.Start(ctx); err != nil {
			return nil, err
		}
	}
	registerStateGauges(set, pods, images)
	pods.Events = events.NewBroker()
	pods.Events.Dropped = set.EventDropped
	pods.Config, pods.OOM, pods.Images = cfg, restriction, images
	d.stream, err = streaming.New(cfg.Stream, streaming.NewRuntime(pods.Containers, streaming.StoreNetNS(pods.SandboxStore)))
	if err != nil {
		return nil, err
	}
	pods.Stream = d.stream
	go func() {
		if err := d.stream.Serve(); err != nil {
			logger.Error(err, "Streaming server stopped")
		}
	}()
	logger.Info("Serving streams", "url", d.stream.URL())
	svc, err := server.New(*pods)
	if err != nil {
		return nil, err
	}
	d.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.GRPC.MaxRecvMessageSize),
		grpc.MaxSendMsgSize(cfg.GRPC.MaxSendMessageSize),
		grpc.ChainUnaryInterceptor(inst.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(inst.StreamServerInterceptor()),
	)
	runtimeapi.RegisterRuntimeServiceServer(d.grpc, svc)
	runtimeapi.RegisterImageServiceServer(d.grpc, svc)

	if cfg.Metrics.Address != "" {
		d.metrics, err = metrics.Listen(cfg.Metrics.Address, reg)
		if err != nil {
			return nil, fmt.Errorf("metrics address %s: %w", cfg.Metrics.Address, err)
		}
		logger.Info("Serving metrics", "address", d.metrics.Addr())
	}
	if cfg.Debug.Address != "" {
		d.debug, err = debug.Listen(cfg.Debug.Address)
		if err != nil {
			return nil, err
		}
		logger.Info("Serving pprof", "address", d.debug.Addr())
	}

	d.ln, err = listenUnix(cfg.GRPC.Address, cfg.GRPC.UID, cfg.GRPC.GID)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := d.grpc.Serve(d.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			logger.Error(err, "CRI server stopped")
		}
	}()
	logger.Info("Serving CRI", "address", cfg.GRPC.Address, "root", cfg.Root, "state", cfg.State)
	return d, nil
}

// applyOOMScore sets the daemon's own oom_score_adj. Where the kernel
// refuses (no CAP_SYS_RESOURCE), it warns and runs on with a floor.
func applyOOMScore(logger klog.Logger, want int) oom.Restriction {
	eff, restricted, err := oom.SetSelf(want)
	switch {
	case err != nil:
		logger.Error(err, "Could not set oom_score_adj; running on", "oom_score", want)
		return oom.Restriction{}
	case restricted:
		logger.Info("WARNING: cannot lower oom_score_adj without CAP_SYS_RESOURCE; keeping the current value and clamping container values to it",
			"oom_score", want, "effective", eff)
		return oom.Restriction{Restricted: true, Floor: eff}
	}
	return oom.Restriction{}
}

// Addr is the socket path.
func (d *Daemon) Addr() string { return d.cfg.GRPC.Address }

// Shutdown stops accepting calls, lets in-flight ones finish for at most
// ShutdownTimeout, and releases the socket and lock. Containers are not
// touched: their monitors keep running.
func (d *Daemon) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		d.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(ShutdownTimeout):
		klog.FromContext(ctx).Info("In-flight RPCs did not finish in time; cutting them off", "timeout", ShutdownTimeout)
		d.grpc.Stop()
		<-done
	}
	d.release(ctx)
}

func (d *Daemon) release(ctx context.Context) {
	if d.nri != nil {
		// Plugins are disconnected; what they set up in containers stays.
		d.nri.Stop()
	}
	if d.stream != nil {
		// Ends the sessions: exec'd processes are killed, not left behind.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := d.stream.Stop(sctx); err != nil {
			klog.FromContext(ctx).Error(err, "Stopping the streaming server")
		}
		cancel()
	}
	if d.ln != nil {
		// GracefulStop closed the listener; the file stays and must go so
		// that clients see "no daemon" rather than "connection refused".
		_ = os.Remove(d.cfg.GRPC.Address)
	}
	if d.metrics != nil {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = d.metrics.Shutdown(sctx)
		cancel()
	}
	if d.debug != nil {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = d.debug.Shutdown(sctx)
		cancel()
	}
	if d.watcher != nil {
		d.watcher.Close()
	}
	if d.db != nil {
		_ = d.db.Close()
	}
	d.lock.release()
}

// openPodServices builds the sandbox (and, later, container) services and
// recovers what the previous daemon left running.
func (d *Daemon) openPodServices(ctx context.Context, cfg *config.Config, oomr oom.Restriction, images *image.Service, set *metrics.Set) (*server.Options, error) {
	monitorPath, err := monitor.FindBinary()
	if err != nil {
		return nil, err
	}
	watcher, err := monitor.NewWatcher()
	if err != nil {
		return nil, err
	}
	d.watcher = watcher
	store, err := sandbox.NewStore(d.db)
	if err != nil {
		return nil, err
	}
	netmgr := network.NewManager(cfg.CNI.BinDirs, cfg.CNI.ConfDir, filepath.Join(cfg.Root, "cni-cache"))
	netmgr.Observe = set.CNIOp
	runtimes := ociruntime.NewSet(cfg)
	runtimes.Observe(set.OCIOp)
	if cfg.NRI.Enable {
		// Built before the controllers, which call its hooks, and bound to
		// them once they exist; it serves plugins only once started.
		if d.nri, err = nri.New(cfg.NRI); err != nil {
			return nil, err
		}
	}
	ctrl := sandbox.NewController(sandbox.Options{
		Config: cfg, Store: store, Images: images, Snapshots: d.snapshots, Network: netmgr,
		Runtimes: runtimes, Watcher: watcher, OOM: oomr, Metrics: set,
		NRI: d.nri.SandboxHooks(),
	})
	cstore, err := container.NewStore(d.db)
	if err != nil {
		return nil, err
	}
	cctrl := container.NewController(container.Options{
		Config: cfg, Store: cstore, Sandboxes: ctrl, SandboxStore: store, Images: images, Snapshots: d.snapshots,
		Runtimes: runtimes, MonitorPath: monitorPath, Watcher: watcher, OOM: oomr, Metrics: set,
		NRI: d.nri.ContainerHooks(),
	})
	ctrl.SetContainers(cctrl)
	if d.nri != nil {
		d.nri.Bind(nri.State{Sandboxes: ctrl, SandboxStore: store, Containers: cctrl, ContainerStore: cstore, Runtimes: runtimes})
	}
	// Containers first: their exits are recorded before sandboxes are judged.
	if err := cctrl.Recover(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "Recovering containers; continuing")
	}
	if err := ctrl.Recover(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "Recovering sandboxes; continuing")
	}
	return &server.Options{Sandboxes: ctrl, SandboxStore: store, Network: netmgr, Runtimes: runtimes,
		Containers: cctrl, ContainerStore: cstore}, nil
}

// openImageService opens the metadata DB, the blob and layer stores, and
// reconciles them after whatever stopped the last daemon.
func (d *Daemon) openImageService(ctx context.Context, cfg *config.Config, set *metrics.Set) (*image.Service, error) {
	db, err := metadata.Open(filepath.Join(cfg.Root, "meta.db"))
	if err != nil {
		return nil, err
	}
	d.db = db
	blobs, err := content.NewStore(filepath.Join(cfg.Root, "content"))
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.New(filepath.Join(cfg.Root, "snapshots"), db)
	if err != nil {
		return nil, err
	}
	d.snapshots = snaps
	images, err := image.New(image.Options{
		DB: db, Content: blobs, Snapshots: snaps, Hosts: hosts.New(cfg.Registry),
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads,
		ProgressTimeout:        cfg.ImagePullProgressTimeout,
		PinnedImages:           []string{cfg.SandboxImage},
		Metrics:                set,
	})
	if err != nil {
		return nil, err
	}
	if err := images.Reconcile(ctx); err != nil {
		return nil, fmt.Errorf("reconciling the image store: %w", err)
	}
	return images, nil
}

// listenUnix binds the CRI socket with mode 0660. A socket file left by a
// dead daemon is removed; one that still answers belongs to a live daemon
// (possibly on another root) and is an error.
func listenUnix(path string, uid, gid int) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("creating socket dir: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Chown(path, uid, gid); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
