package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/image"
	"github.com/cri-rt/cri-rt/pkg/metrics"
	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/mount"
	"github.com/cri-rt/cri-rt/pkg/netns"
	"github.com/cri-rt/cri-rt/pkg/network"
	"github.com/cri-rt/cri-rt/pkg/oci"
	"github.com/cri-rt/cri-rt/pkg/ociruntime"
	"github.com/cri-rt/cri-rt/pkg/oom"
	"github.com/cri-rt/cri-rt/pkg/rollback"
	"github.com/cri-rt/cri-rt/pkg/snapshot"
	"github.com/cri-rt/cri-rt/pkg/store"
)

// Containers is what the sandbox controller needs of the container
// service: a pod's containers stop with it and go with it.
type Containers interface {
	StopAllInSandbox(ctx context.Context, sandboxID string) error
	RemoveAllInSandbox(ctx context.Context, sandboxID string) error
}

// NRIHooks tells Node Resource Interface plugins (pkg/nri) of a sandbox's
// lifecycle. Stop and remove notices cannot fail: plugins are told, and a
// plugin's error is only logged.
type NRIHooks interface {
	// BlockSync holds back the synchronization of newly connecting plugins
	// until the returned func is called, so that a change made between a
	// hook and the record it describes is either in a new plugin's
	// snapshot or told to it by the hook, never lost.
	BlockSync() (unblock func())
	// RunPodSandbox tells plugins of a new sandbox; an error fails its
	// creation.
	RunPodSandbox(ctx context.Context, sb *Sandbox) error
	StopPodSandbox(ctx context.Context, sb *Sandbox)
	RemovePodSandbox(ctx context.Context, sb *Sandbox)
}

// Options are the controller's dependencies.
type Options struct {
	Config    *config.Config
	Store     *Store
	Images    *image.Service
	Snapshots *snapshot.Store
	Network   *network.Manager
	Runtimes  *ociruntime.Set
	Watcher   *monitor.Watcher
	OOM       oom.Restriction
	Metrics   *metrics.Set
	// NRI, when set, is told of each lifecycle step.
	NRI NRIHooks
}

// Controller runs, stops and removes sandboxes.
type Controller struct {
	Options
	containers Containers

	// OnEvent, when set, is told of every lifecycle change of a sandbox
	// (for GetContainerEvents, where the sandbox ID stands as container ID).
	OnEvent func(t runtimeapi.ContainerEventType, containerID, sandboxID string)
}

func (c *Controller) emit(t runtimeapi.ContainerEventType, id string) {
	if c.OnEvent != nil {
		c.OnEvent(t, id, id)
	}
}

// NewController builds a controller.
func NewController(o Options) *Controller { return &Controller{Options: o} }

// SetContainers connects the container service (built after the controller).
func (c *Controller) SetContainers(cs Containers) { c.containers = cs }

// Dir is the sandbox's directory in the state dir: its bundle (config.json),
// rootfs and shm mount points, hostname/hosts/resolv.conf and monitor state.
func (c *Controller) Dir(id string) string { return filepath.Join(c.Config.State, "sandboxes", id) }

func configHash(cfg *runtimeapi.PodSandboxConfig, handler string) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	h := sha256.Sum256(append(b, handler...))
	return hex.EncodeToString(h[:])
}

func hostNetwork(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

func hostIPC(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE
}

// Run creates and starts a sandbox and returns its ID. A retry of a
// request that is still being served (kubelet gave up waiting) joins it and
// gets the same ID, instead of a "name is reserved" error; the work goes on
// even if every caller has gone.
func (c *Controller) Run(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (string, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return "", fmt.Errorf("sandbox metadata needs name, namespace and uid: %w", errdefs.ErrInvalidArgument)
	}
	handler := req.GetRuntimeHandler()
	rt, err := c.Runtimes.Get(handler)
	if err != nil {
		return "", err
	}
	userns, err := oci.UserNamespaceFromCRI(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	if err != nil {
		return "", err
	}
	if userns != nil && !rt.SupportsIDMapMounts(ctx) {
		return "", fmt.Errorf("runtime handler %q does not support user namespaces (idmapped mounts): %w", rt.Name, errdefs.ErrInvalidArgument)
	}
	name := MakeName(md)
	id := store.NewID()
	sb, err := newSandbox(Metadata{ID: id, Name: name, ConfigHash: configHash(cfg, handler), RuntimeHandler: handler, CreatedAt: time.Now().UTC()}, cfg)
	if err != nil {
		return "", err
	}
	if !hostNetwork(cfg) {
		sb.NetNSPath = filepath.Join(c.Config.State, "netns", id)
	}
	got, created, err := c.Store.reserve(sb)
	if err != nil {
		return "", err
	}
	if !created {
		if got.ConfigHash != sb.ConfigHash {
			return "", fmt.Errorf("sandbox name %q is used by sandbox %s with a different configuration: %w", name, got.ID, errdefs.ErrAlreadyExists)
		}
		if err := got.Wait(ctx); err != nil {
			return "", err
		}
		return got.ID, nil
	}
	logger := klog.FromContext(ctx).WithValues("sandbox", id, "pod", md.GetNamespace()+"/"+md.GetName())
	go func() {
		wctx := klog.NewContext(context.WithoutCancel(ctx), logger)
		err := c.create(wctx, sb)
		sb.Finish(err)
		if err == nil {
			c.emit(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, sb.ID)
			c.emit(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, sb.ID)
		}
	}()
	if err := sb.Wait(ctx); err != nil {
		return "", err
	}
	return id, nil
}

func stepErr(step string, err error) error { return fmt.Errorf("%s: %w", step, err) }

func (c *Controller) create(ctx context.Context, sb *Sandbox) (retErr error) {
	logger := klog.FromContext(ctx)
	cfg := sb.Config
	var undo rollback.Stack
	defer func() {
		if retErr != nil {
			undo.Run()
			if err := c.Store.Delete(sb.ID); err != nil {
				logger.Error(err, "Removing the record of a failed sandbox")
			}
			retErr = fmt.Errorf("RunPodSandbox %s: %w", sb.Name, retErr)
		}
	}()
	userns, err := oci.UserNamespaceFromCRI(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	if err != nil {
		return stepErr("user namespace", err)
	}
	stage := time.Now()
	lap := func(name string) {
		c.Metrics.SandboxStage(name, time.Since(stage))
		stage = time.Now()
	}
	img, err := c.ensureImage(ctx)
	if err != nil {
		return stepErr("sandbox image", err)
	}
	imgCfg, err := c.Images.Config(ctx, img)
	if err != nil {
		return stepErr("sandbox image", err)
	}

	dir := c.Dir(sb.ID)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o711); err != nil {
		return stepErr("sandbox dir", err)
	}
	undo.Push(func() { _ = os.RemoveAll(dir) })
	files, err := writeFiles(dir, cfg)
	if err != nil {
		return stepErr("sandbox files", err)
	}

	lap("image")
	// The network is set up while the pause container is created: runc
	// only needs the namespace to exist, and the CNI plugins only the
	// namespace, so the two longest steps overlap.
	var netDone <-chan error
	if sb.NetNSPath != "" {
		// Fail at once, before anything is made, while no network is
		// configured (kubelet waits for NetworkReady anyway).
		if err := c.Network.Status(); err != nil {
			return stepErr("network", fmt.Errorf("network not ready: %w: %w", err, errdefs.ErrFailedPrecondition))
		}
		if err := netns.New(sb.NetNSPath); err != nil {
			return stepErr("network namespace", err)
		}
		undo.Push(func() { _ = netns.Remove(sb.NetNSPath) })
		lap("netns")
		netDone = c.setupNetwork(ctx, sb, &undo)
	}
	// waitNetwork is called once on every path below: the rollback must not
	// run before the setup has ended (it tears down what the setup did).
	waitNetwork := func() error {
		if netDone == nil {
			return nil
		}
		err := <-netDone
		netDone = nil
		return err
	}
	defer func() { _ = waitNetwork() }()

	shm := ""
	if !hostIPC(cfg) {
		shm = filepath.Join(dir, "shm")
		if err := mountShm(shm); err != nil {
			return stepErr("/dev/shm", err)
		}
		undo.Push(func() { _ = mount.UnmountAll(shm) })
	}
	rootfs := filepath.Join(dir, "rootfs")
	// Writable, as the runtime creates mount points (/proc, /dev, ...) in it.
	ms, err := c.Snapshots.Prepare(ctx, snapshotKey(sb.ID), img.TopLayer())
	if err != nil {
		return stepErr("sandbox rootfs", err)
	}
	undo.Push(func() { _ = c.Snapshots.Remove(snapshotKey(sb.ID)) })
	if err := ownUpperByPodRoot(c.Snapshots, snapshotKey(sb.ID), userns); err != nil {
		return stepErr("sandbox rootfs", err)
	}
	if err := mount.All(ms, rootfs); err != nil {
		return stepErr("sandbox rootfs", err)
	}
	undo.Push(func() { _ = mount.UnmountAll(rootfs) })

	lap("rootfs")
	rt, _ := c.Runtimes.Get(sb.RuntimeHandler)
	spec, err := oci.SandboxSpec(oci.SandboxOptions{
		ID: sb.ID, Config: cfg, Image: &imgCfg.Config, RootfsPath: rootfs, NetNSPath: sb.NetNSPath,
		HostnamePath: files.hostname, ResolvConfPath: files.resolv, HostsPath: files.hosts, ShmPath: shm,
		CgroupParent: cfg.GetLinux().GetCgroupParent(), CgroupDriver: c.Config.CgroupDriver, OOM: c.OOM,
		ImageName: c.Config.SandboxImage, UserNS: userns, AppArmorEnabled: oci.AppArmorEnabled(),
	})
	if err != nil {
		return stepErr("sandbox spec", err)
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return stepErr("sandbox spec", err)
	}

	// pause has no monitor: its output is nothing and its exit status
	// means nothing; the daemon watches it through a pidfd (see watch).
	pidFile := filepath.Join(dir, pausePidFile)
	undo.Push(func() {
		_ = rt.Delete(context.WithoutCancel(ctx), sb.ID, true)
	})
	if err := rt.Create(ctx, sb.ID, dir, pidFile, filepath.Join(dir, runtimeLogFile)); err != nil {
		return stepErr("create pause container", err)
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return stepErr("create pause container", err)
	}
	if err := rt.Start(ctx, sb.ID); err != nil {
		return stepErr("start pause container", err)
	}
	lap("runtime_start")
	if err := waitNetwork(); err != nil {
		return stepErr("network", err)
	}
	if c.NRI == nil {
		// One write for both: there is no step in between.
		if err := sb.Update(func(s *Status) error { s.Pid, s.State = pid, StateReady; return nil }); err != nil {
			return stepErr("record sandbox", err)
		}
	} else if err := sb.Update(func(s *Status) error { s.Pid = pid; return nil }); err != nil {
		return stepErr("record sandbox", err)
	}
	if c.NRI != nil {
		// Plugins hear of the pod once its namespaces and network exist,
		// while it is still Creating (hidden from List and Status, refusing
		// containers): a refusal fails RunPodSandbox and the rollback above
		// undoes everything, with Stop and Remove notices for the plugins
		// that accepted it.
		unblock := c.NRI.BlockSync()
		defer unblock()
		undo.Push(func() {
			c.NRI.StopPodSandbox(context.WithoutCancel(ctx), sb)
			c.NRI.RemovePodSandbox(context.WithoutCancel(ctx), sb)
		})
		if err := c.NRI.RunPodSandbox(ctx, sb); err != nil {
			return stepErr("NRI", err)
		}
		if err := sb.Update(func(s *Status) error { s.State = StateReady; return nil }); err != nil {
			return stepErr("record sandbox", err)
		}
	}
	c.watch(sb, pid)
	logger.Info("Sandbox ready", "name", sb.Name, "ips", network.IPsOf(sb.Status().Network))
	return nil
}

// setupNetwork runs CNI ADD for the sandbox in the background and records
// the attachment before anything else can fail, so that whatever happens
// next (a failed create, a crash), the network is released. Its teardown
// is pushed on the rollback. The channel gets the outcome.
func (c *Controller) setupNetwork(ctx context.Context, sb *Sandbox, undo *rollback.Stack) <-chan error {
	logger := klog.FromContext(ctx)
	done := make(chan error, 1)
	var (
		pod network.Pod
		att *network.Attachment
	)
	undo.Push(func() {
		// Runs after the create's own wait (the rollback runs from a
		// deferred func registered before it): att is final.
		if att == nil {
			return
		}
		if err := c.Network.Teardown(context.WithoutCancel(ctx), pod, att); err != nil {
			logger.Error(err, "CNI DEL while rolling back a sandbox")
		}
	})
	go func() {
		start := time.Now()
		err := func() error {
			p, err := c.cniPod(sb, sb.NetNSPath)
			if err != nil {
				return err
			}
			a, err := c.Network.Setup(ctx, p)
			if err != nil {
				return err
			}
			pod, att = p, a
			return sb.Update(func(s *Status) error { s.Network = a; return nil })
		}()
		c.Metrics.SandboxStage("cni", time.Since(start))
		done <- err
	}()
	return done
}

// watch marks the sandbox NotReady when its pause container (pid) exits.
func (c *Controller) watch(sb *Sandbox, pid int) {
	if c.Watcher == nil || pid <= 0 {
		return
	}
	_ = c.Watcher.Watch(pid, func() {
		changed := false
		_ = sb.Update(func(s *Status) error {
			if s.State == StateReady {
				s.State, changed = StateNotReady, true
			}
			return nil
		})
		if changed {
			c.emit(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, sb.ID)
		}
	})
}

func (c *Controller) ensureImage(ctx context.Context) (*image.Record, error) {
	img, err := c.Images.Get(c.Config.SandboxImage)
	if err == nil {
		return img, nil
	}
	if !errdefs.IsNotFound(err) {
		return nil, err
	}
	return c.Images.Pull(ctx, c.Config.SandboxImage, nil)
}

func (c *Controller) cniPod(sb *Sandbox, nsPath string) (network.Pod, error) {
	md := sb.Config.GetMetadata()
	pod := network.Pod{ID: sb.ID, NetNS: nsPath, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()}
	for _, pm := range sb.Config.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		pod.Ports = append(pod.Ports, network.PortMapping{
			HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(),
			Protocol: strings.ToLower(pm.GetProtocol().String()), HostIP: pm.GetHostIp(),
		})
	}
	bw, err := network.ParseBandwidth(sb.Config.GetAnnotations())
	if err != nil {
		return pod, err
	}
	pod.Bandwidth = bw
	return pod, nil
}

// Stop stops the sandbox's containers and pause container and releases its
// network. It is idempotent, succeeds for an unknown ID, and is bounded in
// time: every wait has a limit.
func (c *Controller) Stop(ctx context.Context, id string) error {
	sb, err := c.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	<-sb.Created() // a sandbox still being created is stopped once it exists
	if !c.Store.byIDExists(sb.ID) {
		return nil
	}
	// Plugins are told once: StoppedAt is set by the first Stop that
	// completes, so a repeated StopPodSandbox is silent.
	tellNRI := c.NRI != nil && sb.Status().StoppedAt.IsZero()
	if c.containers != nil {
		if err := c.containers.StopAllInSandbox(ctx, sb.ID); err != nil {
			return fmt.Errorf("stopping containers of sandbox %s: %w", sb.ID, err)
		}
	}
	if err := c.stopPause(ctx, sb); err != nil {
		return err
	}
	if tellNRI {
		// After the workload is stopped and before the network goes, as
		// containerd does.
		c.NRI.StopPodSandbox(ctx, sb)
	}
	released, err := c.releaseNetwork(ctx, sb)
	if err != nil {
		return err
	}
	if shm := filepath.Join(c.Dir(sb.ID), "shm"); !hostIPC(sb.Config) {
		_ = mount.UnmountAll(shm)
	}
	changed := false
	// One write records both the stop and the release of the network (a
	// retry after a failed write repeats CNI DEL, which is idempotent).
	if err := sb.Update(func(s *Status) error {
		s.NetworkReleased = s.NetworkReleased || released
		if s.State != StateNotReady || s.StoppedAt.IsZero() {
			s.StoppedAt = time.Now().UTC()
		}
		changed = s.State == StateReady
		s.State = StateNotReady
		return nil
	}); err != nil {
		return err
	}
	if changed {
		c.emit(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, sb.ID)
	}
	return nil
}

func (c *Controller) stopPause(ctx context.Context, sb *Sandbox) error {
	rt, err := c.Runtimes.Get(sb.RuntimeHandler)
	if err != nil {
		return err
	}
	st := sb.Status()
	if st.Pid > 0 && alive(st.Pid) {
		// pause holds no state worth a graceful stop.
		if err := rt.Kill(ctx, sb.ID, syscall.SIGKILL, false); err != nil && !errdefs.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Killing pause", "sandbox", sb.ID)
		}
		// Bounded: the delete below kills what is left, or says why not.
		monitor.WaitGone(st.Pid, 10*time.Second)
	}
	if err := rt.DeleteStopped(ctx, sb.ID); err != nil {
		return fmt.Errorf("deleting pause container of sandbox %s: %w", sb.ID, err)
	}
	return nil
}

// releaseNetwork runs CNI DEL once (with an empty netns path if the
// namespace is gone, so the IP is still released) and unpins the netns. It
// reports whether the network is released, for the caller to record.
func (c *Controller) releaseNetwork(ctx context.Context, sb *Sandbox) (bool, error) {
	if sb.NetNSPath == "" {
		return false, nil
	}
	st := sb.Status()
	if !st.NetworkReleased && st.Network != nil {
		nsPath := sb.NetNSPath
		if !netns.IsPinned(nsPath) {
			nsPath = ""
		}
		pod, _ := c.cniPod(sb, nsPath)
		if err := c.Network.Teardown(ctx, pod, st.Network); err != nil {
			return false, fmt.Errorf("releasing the network of sandbox %s: %w", sb.ID, err)
		}
	}
	if err := netns.Remove(sb.NetNSPath); err != nil {
		return false, err
	}
	return true, nil
}

// Remove stops the sandbox if needed and removes it with its containers,
// mounts, files and record. Removing an unknown sandbox succeeds.
func (c *Controller) Remove(ctx context.Context, id string) error {
	sb, err := c.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.Stop(ctx, sb.ID); err != nil {
		return err
	}
	if c.containers != nil {
		if err := c.containers.RemoveAllInSandbox(ctx, sb.ID); err != nil {
			return err
		}
	}
	if err := c.removeFiles(sb.ID); err != nil {
		return err
	}
	if err := c.forget(ctx, sb); err != nil {
		return err
	}
	c.emit(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, sb.ID)
	return nil
}

// forget tells plugins the sandbox is removed and drops its record, with
// plugin synchronization held back in between so that a newly connecting
// plugin cannot miss the removal.
func (c *Controller) forget(ctx context.Context, sb *Sandbox) error {
	if c.NRI == nil {
		return c.Store.Delete(sb.ID)
	}
	unblock := c.NRI.BlockSync()
	defer unblock()
	c.NRI.RemovePodSandbox(ctx, sb)
	return c.Store.Delete(sb.ID)
}

func (c *Controller) removeFiles(id string) error {
	dir := c.Dir(id)
	for _, m := range []string{"shm", "rootfs"} {
		if err := mount.UnmountAll(filepath.Join(dir, m)); err != nil {
			return err
		}
	}
	if err := c.Snapshots.Remove(snapshotKey(id)); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// Files of the pause container in the sandbox dir.
const (
	pausePidFile   = "pause.pid"   // written by the runtime
	runtimeLogFile = "runtime.log" // the runtime's JSON log
)

// readPid reads a pid file the runtime wrote.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, b)
	}
	return pid, nil
}

// snapshotKey names the pause container's writable layer.
func snapshotKey(sandboxID string) string { return "sandbox-" + sandboxID }

// Recover brings the store in line with reality after a (re)start:
// sandboxes whose creation was interrupted are torn down, those whose pause
// died are NotReady with their network released, live ones are watched
// again, and network namespaces and directories of unknown sandboxes go.
func (c *Controller) Recover(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	var errs []error
	for _, sb := range c.Store.List() {
		st := sb.Status()
		switch {
		case st.State == StateCreating:
			logger.Info("Tearing down a sandbox whose creation was interrupted", "sandbox", sb.ID)
			if err := c.Remove(ctx, sb.ID); err != nil {
				errs = append(errs, err)
			}
		case st.State == StateReady && pauseAlive(sb.ID, st.Pid):
			c.watch(sb, st.Pid)
		default:
			if st.State == StateReady {
				logger.Info("Pause container died while cri-rt was down; sandbox is NotReady", "sandbox", sb.ID)
			}
			if err := c.Stop(ctx, sb.ID); err != nil {
				logger.Error(err, "Releasing a stopped sandbox; will retry on StopPodSandbox", "sandbox", sb.ID)
			}
		}
	}
	// Leftovers of sandboxes nobody knows.
	if ents, err := os.ReadDir(filepath.Join(c.Config.State, "netns")); err == nil {
		for _, e := range ents {
			if !c.Store.byIDExists(e.Name()) {
				_ = netns.Remove(filepath.Join(c.Config.State, "netns", e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(filepath.Join(c.Config.State, "sandboxes")); err == nil {
		for _, e := range ents {
			if !c.Store.byIDExists(e.Name()) {
				_ = c.removeFiles(e.Name())
			}
		}
	}
	if keys, err := c.Snapshots.ActiveKeys(); err == nil {
		for _, k := range keys {
			if id, ok := strings.CutPrefix(k, "sandbox-"); ok && !c.Store.byIDExists(id) {
				_ = c.Snapshots.Remove(k)
			}
		}
	}
	return errors.Join(errs...)
}

// pauseAlive tells whether the pause container (pid) of sandbox id still
// runs. (Sandboxes of an earlier cri-rt, whose pause had a monitor, record
// pause's pid too: the monitor ends with it.)
func pauseAlive(id string, pid int) bool {
	if pid <= 0 || monitor.WaitGone(pid, 0) {
		return false
	}
	// Guard against pid reuse: the process must be in the sandbox's
	// cgroup, whose path ends with the sandbox ID with either driver.
	cgroups, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return err == nil && strings.Contains(string(cgroups), id)
}

func alive(pid int) bool { return unix.Kill(pid, 0) == nil }

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func mountShm(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k")
}

// ownUpperByPodRoot gives the root of a writable layer to the pod's root
// user when the pod has a user namespace, so that the runtime, running as
// that user, can create its mount points (/proc, /dev, ...) in the rootfs.
// Files of the image layers keep their owners and appear as the overflow
// user inside the pod: the layers are not idmapped.
func ownUpperByPodRoot(snaps *snapshot.Store, key string, userns *oci.UserNamespace) error {
	if userns == nil || len(userns.UIDMappings) == 0 || len(userns.GIDMappings) == 0 {
		return nil
	}
	upper, err := snaps.UpperDir(key)
	if err != nil {
		return err
	}
	return os.Chown(upper, int(userns.UIDMappings[0].HostID), int(userns.GIDMappings[0].HostID))
}

// OwnUpperByPodRoot is ownUpperByPodRoot for the container controller.
func OwnUpperByPodRoot(snaps *snapshot.Store, key string, userns *oci.UserNamespace) error {
	return ownUpperByPodRoot(snaps, key, userns)
}
