package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/cgstats"
	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/image"
	"github.com/cri-rt/cri-rt/pkg/metrics"
	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/mount"
	"github.com/cri-rt/cri-rt/pkg/oci"
	"github.com/cri-rt/cri-rt/pkg/ociruntime"
	"github.com/cri-rt/cri-rt/pkg/oom"
	"github.com/cri-rt/cri-rt/pkg/rollback"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
	"github.com/cri-rt/cri-rt/pkg/snapshot"
	"github.com/cri-rt/cri-rt/pkg/store"
)

// NRIHooks tells Node Resource Interface plugins (pkg/nri) of a
// container's lifecycle. Only the hooks before a step can fail it; the
// notices after one cannot: a plugin's error there is only logged.
type NRIHooks interface {
	// BlockSync holds back the synchronization of newly connecting plugins
	// until the returned func is called, so that a change made between a
	// hook and the record it describes is either in a new plugin's
	// snapshot or told to it by the hook, never lost.
	BlockSync() (unblock func())
	// CreateContainer lets plugins adjust spec, in place, before the
	// container is created; an error fails the creation.
	CreateContainer(ctx context.Context, ctr *Container, spec *specs.Spec) error
	PostCreateContainer(ctx context.Context, ctr *Container)
	// StartContainer is told before the process starts; an error fails
	// the start.
	StartContainer(ctx context.Context, ctr *Container) error
	PostStartContainer(ctx context.Context, ctr *Container)
	StopContainer(ctx context.Context, ctr *Container)
	RemoveContainer(ctx context.Context, ctr *Container)
}

// Options are the controller's dependencies.
type Options struct {
	Config       *config.Config
	Store        *Store
	Sandboxes    *sandbox.Controller
	SandboxStore *sandbox.Store
	Images       *image.Service
	Snapshots    *snapshot.Store
	Runtimes     *ociruntime.Set
	MonitorPath  string
	Watcher      *monitor.Watcher
	OOM          oom.Restriction
	Metrics      *metrics.Set
	// NRI, when set, is told of each lifecycle step.
	NRI NRIHooks
}

// Controller creates, starts, stops and removes containers.
type Controller struct {
	Options

	statsOnce sync.Once
	stats     *statsCache

	// OnEvent, when set, is told of every lifecycle change (for
	// GetContainerEvents).
	OnEvent func(t runtimeapi.ContainerEventType, containerID, sandboxID string)
}

func (c *Controller) emit(t runtimeapi.ContainerEventType, ctr *Container) {
	if c.OnEvent != nil {
		c.OnEvent(t, ctr.ID, ctr.SandboxID)
	}
}

// NewController builds a controller.
func NewController(o Options) *Controller { return &Controller{Options: o} }

// Dir is the container's directory in the state dir: bundle (config.json),
// rootfs mount point and monitor state.
func (c *Controller) Dir(id string) string { return filepath.Join(c.Config.State, "containers", id) }

// MonitorDir is the container monitor's state dir.
func (c *Controller) MonitorDir(id string) string { return filepath.Join(c.Dir(id), "monitor") }

func snapshotKey(id string) string { return "container-" + id }

// Create creates a container in a sandbox; it is started by Start. A retry
// of a request still in progress gets the same container.
func (c *Controller) Create(ctx context.Context, req *runtimeapi.CreateContainerRequest) (string, error) {
	cfg := req.GetConfig()
	if cfg.GetMetadata().GetName() == "" {
		return "", fmt.Errorf("container metadata needs a name: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return "", fmt.Errorf("container %q names no image: %w", cfg.GetMetadata().GetName(), errdefs.ErrInvalidArgument)
	}
	sb, err := c.SandboxStore.Get(req.GetPodSandboxId())
	if err != nil {
		return "", err
	}
	if sb.Status().State != sandbox.StateReady {
		return "", fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	hashIn, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	sum := sha256.Sum256(append(hashIn, sb.ID...))
	ctr, err := newContainer(Metadata{ID: store.NewID(), Name: MakeName(cfg.GetMetadata(), sb.Config.GetMetadata()),
		ConfigHash: hex.EncodeToString(sum[:]), SandboxID: sb.ID, CreatedAt: time.Now().UTC()}, cfg)
	if err != nil {
		return "", err
	}
	rt, err := c.Runtimes.Get(sb.RuntimeHandler)
	if err != nil {
		return "", err
	}
	// The container's dir first, with its mode: the monitor would make it
	// 0700, which a user-namespaced pod's root could not traverse.
	if err := os.MkdirAll(filepath.Join(c.Dir(ctr.ID), "rootfs"), 0o711); err != nil {
		_ = os.RemoveAll(c.Dir(ctr.ID))
		return "", err
	}
	// The monitor starts first, and gets ready while the record is
	// written and the bundle prepared (starting a process costs
	// milliseconds); it creates the container when told to, in create.
	mon := startMonitor(c.MonitorPath, monitor.Config{
		ID: ctr.ID, Bundle: c.Dir(ctr.ID), Runtime: rt.Path, RuntimeRoot: rt.Root, SystemdCgroup: rt.SystemdCgroup,
		StateDir: c.MonitorDir(ctr.ID), LogPath: logPathOf(cfg, sb), Terminal: cfg.GetTty(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
	})
	got, created, err := c.Store.reserve(ctr)
	if err != nil || !created {
		go func() {
			mon.abandon()
			_ = os.RemoveAll(c.Dir(ctr.ID))
		}()
	}
	if err != nil {
		return "", err
	}
	if !created {
		if got.ConfigHash != ctr.ConfigHash {
			return "", fmt.Errorf("container name %q is used by container %s: %w", ctr.Name, got.ID, errdefs.ErrAlreadyExists)
		}
		if err := got.Wait(ctx); err != nil {
			return "", err
		}
		return got.ID, nil
	}
	logger := klog.FromContext(ctx).WithValues("container", ctr.ID, "name", ctr.Name)
	go func() {
		start := time.Now()
		err := c.create(klog.NewContext(context.WithoutCancel(ctx), logger), ctr, sb, req.GetSandboxConfig(), rt, mon)
		c.Metrics.ContainerOp("create", c.handlerName(sb.RuntimeHandler), time.Since(start))
		ctr.Finish(err)
		if err == nil {
			c.emit(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, ctr)
		}
	}()
	if err := ctr.Wait(ctx); err != nil {
		return "", err
	}
	return ctr.ID, nil
}

func (c *Controller) create(ctx context.Context, ctr *Container, sb *sandbox.Sandbox, sbCfg *runtimeapi.PodSandboxConfig, rt *ociruntime.Runtime, mon *earlyMonitor) (retErr error) {
	logger := klog.FromContext(ctx)
	cfg := ctr.Config
	var undo rollback.Stack
	defer func() {
		if retErr != nil {
			undo.Run()
			if err := c.Store.Delete(ctr.ID); err != nil {
				logger.Error(err, "Removing the record of a failed container")
			}
			retErr = fmt.Errorf("CreateContainer %s: %w", ctr.Name, retErr)
		}
	}()
	if sbCfg == nil {
		sbCfg = sb.Config
	}
	dir := c.Dir(ctr.ID)
	rootfs := filepath.Join(dir, "rootfs")
	undo.Push(func() { _ = os.RemoveAll(dir) })
	undo.Push(mon.abandon)
	logPath := logPathOf(cfg, sb)

	img, err := c.Images.Get(cfg.GetImage().GetImage())
	if err != nil {
		return fmt.Errorf("image %q: %w", cfg.GetImage().GetImage(), err)
	}
	imgCfg, err := c.Images.Config(ctx, img)
	if err != nil {
		return err
	}
	ms, err := c.Snapshots.Prepare(ctx, snapshotKey(ctr.ID), img.TopLayer())
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	undo.Push(func() { _ = c.Snapshots.Remove(snapshotKey(ctr.ID)) })
	podUserns, err := oci.UserNamespaceFromCRI(sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	if err != nil {
		return err
	}
	if err := sandbox.OwnUpperByPodRoot(c.Snapshots, snapshotKey(ctr.ID), podUserns); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := mount.All(ms, rootfs); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	undo.Push(func() { _ = mount.UnmountAll(rootfs) })

	for _, p := range oci.HostPathsToCreate(cfg) {
		// kubelet expects a missing host path of a bind mount to be created
		// as a directory (as the anchors do).
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("creating host path %s: %w", p, err)
		}
	}

	imageVolumes, imageVolumeRefs, err := c.prepareImageVolumes(ctx, ctr.ID, cfg, &undo)
	if err != nil {
		return err
	}
	ctr.ImageVolumeRefs = imageVolumeRefs

	features := oci.Features{
		RecursiveReadOnly: rt.SupportsMountOption(ctx, "rro"),
		IDMapMounts:       rt.SupportsIDMapMounts(ctx),
	}
	sbDir := c.Sandboxes.Dir(sb.ID)
	shm := filepath.Join(sbDir, "shm")
	if sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE {
		shm = ""
	}
	userns, err := oci.UserNamespaceFromCRI(sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	if err != nil {
		return err
	}
	targetPid := 0
	if tid := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetTargetId(); tid != "" {
		target, err := c.Store.Get(tid)
		if err != nil {
			return fmt.Errorf("target container of the PID namespace: %w", err)
		}
		targetPid = target.Status().Pid
	}
	var warnings []string
	spec, err := oci.ContainerSpec(oci.ContainerOptions{
		ID: ctr.ID, SandboxID: sb.ID, Config: cfg, SandboxConfig: sbCfg, Image: &imgCfg.Config,
		ImageName: cfg.GetImage().GetUserSpecifiedImage(), RootfsPath: rootfs, SandboxPid: sb.Status().Pid, TargetPid: targetPid,
		NetNSPath: sb.NetNSPath, HostnamePath: filepath.Join(sbDir, "hostname"), ResolvConfPath: filepath.Join(sbDir, "resolv.conf"),
		HostsPath: filepath.Join(sbDir, "hosts"), ShmPath: shm, CgroupDriver: c.Config.CgroupDriver, OOM: c.OOM,
		Features: features, ImageVolumes: imageVolumes, UserNS: userns, AppArmorEnabled: oci.AppArmorEnabled(),
		Warnf: func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		logger.Info("WARNING: container spec adjusted", "detail", w)
	}
	if c.NRI != nil {
		// Plugins adjust the spec before anything depends on it (mount
		// points, cgroup dir, recorded resources), while the container is
		// still Creating and so hidden: a refusal fails CreateContainer and
		// the rollback leaves nothing, with Stop and Remove notices for the
		// plugins that accepted it.
		unblock := c.NRI.BlockSync()
		defer unblock()
		undo.Push(func() {
			c.NRI.StopContainer(context.WithoutCancel(ctx), ctr)
			c.NRI.RemoveContainer(context.WithoutCancel(ctx), ctr)
		})
		if err := c.NRI.CreateContainer(ctx, ctr, spec); err != nil {
			return fmt.Errorf("NRI: %w", err)
		}
	}
	if podUserns != nil {
		// The runtime runs as the pod's root, which cannot write the
		// image's directories (the layers are not idmapped): create the
		// mount points now, as the host's root.
		if err := precreateMountpoints(rootfs, spec.Mounts); err != nil {
			return fmt.Errorf("rootfs mount points: %w", err)
		}
	}
	user, err := oci.ResolveUser(rootfs, cfg.GetLinux().GetSecurityContext(), &imgCfg.Config)
	if err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return err
	}

	cgroupDir := memoryCgroupDir(spec.Linux.CgroupsPath, c.Config.CgroupDriver)
	ref := img.ID.String()
	if len(img.RepoDigests) > 0 {
		ref = img.RepoDigests[0]
	}
	// Metadata that depends on the image and spec; set before the record
	// is persisted with the Created state below.
	ctr.ImageID, ctr.ImageRef, ctr.ImageName = img.ID.String(), ref, cfg.GetImage().GetImage()
	ctr.LogPath, ctr.CgroupDir, ctr.CgroupPath = logPath, cgroupDir, spec.Linux.CgroupsPath
	ctr.StopSignal = int(oci.StopSignal(cfg, &imgCfg.Config))
	ctr.UID, ctr.GID, ctr.AdditionalGids = user.UID, user.GID, user.AdditionalGids

	var more []string
	if cgroupDir != "" {
		more = append(more, "--cgroup-dir", cgroupDir)
	}
	info, err := mon.create(ctx, more...)
	if err != nil {
		return err
	}
	undo.Push(func() {
		// The monitor is our child: have it reaped when it ends.
		c.watchOnly(info.MonitorPid)
		_ = rt.Delete(context.WithoutCancel(ctx), ctr.ID, true)
	})
	var res json.RawMessage
	if spec.Linux.Resources != nil {
		res, _ = json.Marshal(spec.Linux.Resources)
	}
	if err := ctr.Update(func(s *Status) error {
		s.State, s.Pid, s.MonitorPid, s.Resources = StateCreated, info.ContainerPid, info.MonitorPid, res
		return nil
	}); err != nil {
		return err
	}
	c.watch(ctr, info.MonitorPid)
	if c.NRI != nil {
		c.NRI.PostCreateContainer(ctx, ctr)
	}
	return nil
}

// logPathOf is the container's CRI log file, "" for none.
func logPathOf(cfg *runtimeapi.ContainerConfig, sb *sandbox.Sandbox) string {
	if cfg.GetLogPath() == "" || sb.Config.GetLogDirectory() == "" {
		return ""
	}
	return filepath.Join(sb.Config.GetLogDirectory(), cfg.GetLogPath())
}

// earlyMonitor is a monitor being started in the background for a
// container whose bundle is still being prepared.
type earlyMonitor struct {
	started chan struct{} // closed once monitor.Start has returned
	pending *monitor.Pending
	err     error
	used    bool // create was called: abandon has nothing to do
}

func startMonitor(binary string, cfg monitor.Config) *earlyMonitor {
	m := &earlyMonitor{started: make(chan struct{})}
	go func() {
		defer close(m.started)
		m.pending, m.err = monitor.Start(binary, cfg)
	}()
	return m
}

// create tells the monitor to create the container (see monitor.Pending.Go).
func (m *earlyMonitor) create(ctx context.Context, more ...string) (*monitor.Info, error) {
	<-m.started
	if m.err != nil {
		return nil, m.err
	}
	m.used = true
	return m.pending.Go(ctx, more...)
}

// abandon stops a monitor that was never told to create its container.
func (m *earlyMonitor) abandon() {
	<-m.started
	if !m.used && m.pending != nil {
		m.pending.Abandon()
	}
}

// CgroupRel turns a spec's cgroupsPath into the cgroup's path relative to
// a hierarchy root (systemd's slice:prefix:name expanded as runc does).
func CgroupRel(cgroupsPath, driver string) string {
	if driver == config.CgroupDriverSystemd {
		if parts := strings.SplitN(cgroupsPath, ":", 3); len(parts) == 3 {
			return filepath.Join(expandSlice(parts[0]), parts[1]+"-"+parts[2]+".scope")
		}
	}
	return cgroupsPath
}

// memoryCgroupDir is where the container's memory cgroup lives, for OOM
// detection (cgroup v1 memory controller, or v2 unified).
func memoryCgroupDir(cgroupsPath, driver string) string {
	p := CgroupRel(cgroupsPath, driver)
	if cgstats.Unified() {
		return filepath.Join("/sys/fs/cgroup", p)
	}
	return filepath.Join("/sys/fs/cgroup/memory", p)
}

// expandSlice turns "a-b-c.slice" into "a.slice/a-b.slice/a-b-c.slice".
func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return "/"
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		prefix += part
		path = filepath.Join(path, prefix+".slice")
		prefix += "-"
	}
	return "/" + path
}

// watch records the container's exit when its monitor ends.
func (c *Controller) watch(ctr *Container, monitorPid int) {
	if c.Watcher == nil || monitorPid <= 0 {
		return
	}
	_ = c.Watcher.Watch(monitorPid, func() { c.recordExit(ctr) })
}

// watchOnly has the Watcher reap a monitor whose container is being undone.
func (c *Controller) watchOnly(monitorPid int) {
	if c.Watcher != nil && monitorPid > 0 {
		_ = c.Watcher.Watch(monitorPid, func() {})
	}
}

// recordExit reads the exit the monitor wrote and moves the container to
// Exited with the CRI's reason.
func (c *Controller) recordExit(ctr *Container) {
	ctr.lifecycle.Lock()
	defer ctr.lifecycle.Unlock()
	exit, err := monitor.ReadExit(c.MonitorDir(ctr.ID))
	changed := false
	if c.NRI != nil {
		// The exit and its notice are one step for a connecting plugin.
		unblock := c.NRI.BlockSync()
		defer unblock()
	}
	defer func() {
		if changed {
			c.emit(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, ctr)
			// Here, on every exit (self-inflicted or StopContainer), and so
			// exactly once: plugins may release what the container held.
			if c.NRI != nil {
				c.NRI.StopContainer(context.Background(), ctr)
			}
		}
	}()
	_ = ctr.Update(func(s *Status) error {
		if s.State == StateExited {
			return nil
		}
		changed = s.State != StateCreating
		if s.State == StateCreating {
			return errors.New("not created")
		}
		s.State = StateExited
		if err != nil {
			s.ExitCode, s.Reason, s.Message, s.FinishedAt = 255, "Unknown", "the container's monitor ended without recording an exit", time.Now().UTC()
			return nil
		}
		s.ExitCode, s.FinishedAt = int32(exit.ExitCode), exit.FinishedAt
		switch {
		case exit.OOMKilled:
			s.Reason = "OOMKilled"
			c.Metrics.OOMKill()
		case exit.ExitCode == 0:
			s.Reason = "Completed"
		default:
			s.Reason = "Error"
		}
		s.Message = exit.Reason
		return nil
	})
}

// Start starts a created container.
func (c *Controller) Start(ctx context.Context, id string) error {
	ctr, err := c.Store.Get(id)
	if err != nil {
		return err
	}
	<-ctr.Created()
	st := ctr.Status()
	switch st.State {
	case StateRunning:
		return nil
	case StateCreated:
	default:
		return fmt.Errorf("container %s is %s, not Created: %w", ctr.ID, st.State, errdefs.ErrFailedPrecondition)
	}
	rt, err := c.runtimeOf(ctr)
	if err != nil {
		return err
	}
	ctr.lifecycle.Lock()
	defer ctr.lifecycle.Unlock()
	if c.NRI != nil {
		unblock := c.NRI.BlockSync()
		defer unblock()
		if err := c.NRI.StartContainer(ctx, ctr); err != nil {
			return fmt.Errorf("starting container %s: NRI: %w", ctr.ID, err)
		}
	}
	start := time.Now()
	if err := rt.Start(ctx, ctr.ID); err != nil {
		return fmt.Errorf("starting container %s: %w", ctr.ID, err)
	}
	c.Metrics.ContainerOp("start", rt.Name, time.Since(start))
	if err := ctr.Update(func(s *Status) error {
		if s.State == StateCreated {
			s.State, s.StartedAt = StateRunning, time.Now().UTC()
		} else if s.StartedAt.IsZero() {
			s.StartedAt = time.Now().UTC() // it already exited
		}
		return nil
	}); err != nil {
		return err
	}
	c.emit(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, ctr)
	if c.NRI != nil {
		// Under the lifecycle lock: an exit at once is told after this.
		c.NRI.PostStartContainer(ctx, ctr)
	}
	return nil
}

func (c *Controller) runtimeOf(ctr *Container) (*ociruntime.Runtime, error) {
	handler := ""
	if sb, err := c.SandboxStore.Get(ctr.SandboxID); err == nil {
		handler = sb.RuntimeHandler
	}
	return c.Runtimes.Get(handler)
}

// killWait is how long Stop waits after SIGKILL before giving up on a
// process stuck in the kernel (D state): Stop stays bounded.
const killWait = 10 * time.Second

// Stop sends the stop signal, waits up to timeout, then kills everything in
// the container. It is idempotent: a missing or exited container is fine.
func (c *Controller) Stop(ctx context.Context, id string, timeout time.Duration) error {
	ctr, err := c.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if rt, err := c.runtimeOf(ctr); err == nil {
		defer func(start time.Time) { c.Metrics.ContainerOp("stop", rt.Name, time.Since(start)) }(time.Now())
	}
	<-ctr.Created()
	if !c.Store.exists(ctr.ID) {
		return nil
	}
	st := ctr.Status()
	if st.State == StateExited || st.State == StateCreating {
		return nil
	}
	rt, err := c.runtimeOf(ctr)
	if err != nil {
		return err
	}
	mdir := c.MonitorDir(ctr.ID)
	if st.State == StateRunning && timeout > 0 {
		sig := syscall.Signal(ctr.StopSignal)
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		if err := rt.Kill(ctx, ctr.ID, sig, false); err != nil && !errdefs.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Sending the stop signal", "container", ctr.ID)
		}
		if waitExit(mdir, st.MonitorPid, timeout) {
			c.recordExit(ctr)
			return nil
		}
	}
	// Created containers and those that ignored the signal: kill them all.
	if err := rt.Kill(ctx, ctr.ID, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Killing", "container", ctr.ID)
	}
	if !waitExit(mdir, st.MonitorPid, killWait) {
		// The monitor itself is wedged; end it so the container cannot be
		// reported running forever.
		_ = unix.Kill(st.MonitorPid, unix.SIGKILL)
		if !waitExit(mdir, st.MonitorPid, 2*time.Second) {
			return fmt.Errorf("container %s did not stop within %s after SIGKILL: %w", ctr.ID, killWait, errdefs.ErrUnavailable)
		}
	}
	c.recordExit(ctr)
	return nil
}

// waitExit waits until the monitor has gone (after writing the exit).
func waitExit(stateDir string, monitorPid int, timeout time.Duration) bool {
	if !monitor.Running(stateDir) {
		return true
	}
	return monitor.WaitGone(monitorPid, timeout)
}

// Remove force-stops and removes a container, its rootfs, files and
// record. Removing a missing container succeeds.
func (c *Controller) Remove(ctx context.Context, id string) error {
	ctr, err := c.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	<-ctr.Created()
	if err := c.Stop(ctx, ctr.ID, 0); err != nil {
		return err
	}
	if rt, err := c.runtimeOf(ctr); err == nil {
		if err := rt.DeleteStopped(ctx, ctr.ID); err != nil {
			return fmt.Errorf("deleting container %s from the runtime: %w", ctr.ID, err)
		}
	}
	if err := c.removeFiles(ctr.ID); err != nil {
		return err
	}
	if err := c.forget(ctx, ctr); err != nil {
		return err
	}
	c.emit(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, ctr)
	return nil
}

// forget tells plugins the container is removed and drops its record,
// with plugin synchronization held back in between so that a newly
// connecting plugin cannot miss the removal.
func (c *Controller) forget(ctx context.Context, ctr *Container) error {
	if c.NRI == nil {
		return c.Store.Delete(ctr.ID)
	}
	unblock := c.NRI.BlockSync()
	defer unblock()
	c.NRI.RemoveContainer(ctx, ctr)
	return c.Store.Delete(ctr.ID)
}

func (c *Controller) removeFiles(id string) error {
	if err := mount.UnmountAll(filepath.Join(c.Dir(id), "rootfs")); err != nil {
		return err
	}
	if err := c.removeImageVolumes(id); err != nil {
		return err
	}
	if err := c.Snapshots.Remove(snapshotKey(id)); err != nil {
		return err
	}
	return os.RemoveAll(c.Dir(id))
}

// podParallelism bounds how many containers of one pod are stopped or
// removed at once: enough to make a big pod go quickly, few enough not to
// flood the machine with runtime processes.
const podParallelism = 8

// StopAllInSandbox stops every container of a sandbox (for StopPodSandbox).
func (c *Controller) StopAllInSandbox(ctx context.Context, sandboxID string) error {
	return c.forAllInSandbox(sandboxID, func(ctr *Container) error { return c.Stop(ctx, ctr.ID, 10*time.Second) })
}

// RemoveAllInSandbox removes every container of a sandbox.
func (c *Controller) RemoveAllInSandbox(ctx context.Context, sandboxID string) error {
	return c.forAllInSandbox(sandboxID, func(ctr *Container) error { return c.Remove(ctx, ctr.ID) })
}

func (c *Controller) forAllInSandbox(sandboxID string, fn func(*Container) error) error {
	var g errgroup.Group
	g.SetLimit(podParallelism)
	var mu sync.Mutex
	var errs []error
	for _, ctr := range c.Store.InSandbox(sandboxID) {
		g.Go(func() error {
			if err := fn(ctr); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// Recover brings containers in line after a (re)start: records of
// interrupted creations are removed, running containers are watched again,
// containers whose monitor ended while the daemon was down get their exit.
func (c *Controller) Recover(ctx context.Context) error {
	var errs []error
	for _, ctr := range c.Store.List() {
		st := ctr.Status()
		switch {
		case st.State == StateCreating:
			if err := c.Remove(ctx, ctr.ID); err != nil {
				errs = append(errs, err)
			}
		case st.State == StateExited:
		case monitor.Running(c.MonitorDir(ctr.ID)):
			c.watch(ctr, st.MonitorPid)
		default:
			c.recordExit(ctr)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(c.Config.State, "containers")); err == nil {
		for _, e := range ents {
			if !c.Store.exists(e.Name()) {
				_ = c.removeFiles(e.Name())
			}
		}
	}
	if keys, err := c.Snapshots.ActiveKeys(); err == nil {
		for _, k := range keys {
			if id, ok := strings.CutPrefix(k, "container-"); ok && !c.Store.exists(id) {
				_ = c.Snapshots.Remove(k)
			}
			if rest, ok := strings.CutPrefix(k, "imagevol-"); ok && len(rest) > 64 && !c.Store.exists(rest[:64]) {
				_ = c.Snapshots.Remove(k)
			}
		}
	}
	return errors.Join(errs...)
}

// UsedImages lists the image IDs containers use (they must not be removed
// from under them: their layers stay through the active snapshots anyway).
func (c *Controller) UsedImages() []string {
	var out []string
	for _, ctr := range c.Store.List() {
		if !slices.Contains(out, ctr.ImageID) {
			out = append(out, ctr.ImageID)
		}
	}
	return out
}

// precreateMountpoints creates, inside rootfs, the destination of every
// mount that does not exist yet: a directory, or an empty file for a bind
// mount of a file. Paths are resolved within rootfs (symlinks cannot lead
// out).
func precreateMountpoints(rootfs string, mounts []specs.Mount) error {
	for _, m := range mounts {
		dst, err := securejoin.SecureJoin(rootfs, m.Destination)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		isFile := false
		if m.Type == "bind" {
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				isFile = true
			}
		}
		if !isFile {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil && !os.IsExist(err) {
			return err
		}
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// handlerName resolves "" to the default handler's name, for metrics.
func (c *Controller) handlerName(h string) string {
	if rt, err := c.Runtimes.Get(h); err == nil {
		return rt.Name
	}
	return h
}
