package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

// podSeq numbers pods across runtimes and passes: names and UIDs stay
// unique.
var podSeq atomic.Int64

// callTimeout bounds every CRI call; a runtime that hangs fails the run
// rather than stalling it.
const callTimeout = 2 * time.Minute

// pod is a sandbox the benchmark made, with its containers.
type pod struct {
	id   string
	cfg  *runtimeapi.PodSandboxConfig
	ctrs []string
	logs map[string]string // container ID → its CRI log file
}

// podConfig is what kubelet sends for a BestEffort pod with the cgroupfs
// driver: its own cgroup parent, a log directory it created, pod network
// and IPC namespaces, a container PID namespace, cluster DNS settings.
func (in *instance) podConfig(name string) (*runtimeapi.PodSandboxConfig, error) {
	n := podSeq.Add(1)
	name = fmt.Sprintf("%s-%d", name, n)
	uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", n, time.Now().UnixNano()&0xffffffffffff)
	logDir := filepath.Join(in.dir, "pods", fmt.Sprintf("%s_%s", name, uid))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: "crbench"},
		Hostname:     name,
		LogDirectory: logDir,
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"crbench.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
		Labels: map[string]string{
			"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "crbench", "io.kubernetes.pod.uid": uid,
		},
		Annotations: map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    cgroupParent(in.def.key, uid),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns},
		},
	}, nil
}

// cgroupRoot is where every pod's cgroup goes (cgroupfs paths), per
// runtime, as kubelet's /kubepods; removed at the end.
const cgroupRoot = "/crbench"

func cgroupParent(key, uid string) string { return cgroupRoot + "/" + key + "/pod" + uid }

func (in *instance) containerConfig(name string, p *pod) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: in.e.imgs.app},
		Command:  []string{"/bin/app"},
		LogPath:  name + "/0.log",
		Labels: map[string]string{
			"io.kubernetes.container.name": name, "io.kubernetes.pod.name": p.cfg.Metadata.Name,
			"io.kubernetes.pod.namespace": "crbench", "io.kubernetes.pod.uid": p.cfg.Metadata.Uid,
		},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: p.cfg.Linux.SecurityContext.NamespaceOptions,
			},
		},
	}
}

// runPod times RunPodSandbox (the config is made before the clock starts,
// as kubelet makes the log dir before it calls).
func (in *instance) runPod(ctx context.Context, name string) (*pod, time.Duration, error) {
	cfg, err := in.podConfig(name)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	r, err := in.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	d := time.Since(start)
	if err != nil {
		return nil, 0, fmt.Errorf("RunPodSandbox: %w", err)
	}
	return &pod{id: r.PodSandboxId, cfg: cfg}, d, nil
}

// createStart times CreateContainer + StartContainer.
func (in *instance) createStart(ctx context.Context, p *pod, name string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	c, err := in.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: in.containerConfig(name, p), SandboxConfig: p.cfg})
	if err != nil {
		return "", 0, fmt.Errorf("CreateContainer: %w", err)
	}
	p.addContainer(c.ContainerId, name)
	if _, err := in.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		return "", 0, fmt.Errorf("StartContainer: %w", err)
	}
	return c.ContainerId, time.Since(start), nil
}

func (p *pod) addContainer(id, name string) {
	p.ctrs = append(p.ctrs, id)
	if p.logs == nil {
		p.logs = map[string]string{}
	}
	p.logs[id] = filepath.Join(p.cfg.LogDirectory, name, "0.log")
}

// waitReady waits until the file holds the app's "ready" line: the app
// then handles SIGTERM (see hack/bench/app).
func waitReady(ctx context.Context, file string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(file); err == nil && bytes.Contains(b, []byte("ready")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no ready line in %s after 30s", file)
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
}

// stopRemoveContainer times StopContainer (kubelet's default grace of 30
// s; the container exits at once on SIGTERM) + RemoveContainer, once the
// container is ready (untimed).
func (in *instance) stopRemoveContainer(ctx context.Context, p *pod, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := waitReady(ctx, p.logs[id]); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := in.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 30}); err != nil {
		return 0, fmt.Errorf("StopContainer: %w", err)
	}
	if _, err := in.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return 0, fmt.Errorf("RemoveContainer: %w", err)
	}
	d := time.Since(start)
	for i, c := range p.ctrs {
		if c == id {
			p.ctrs = append(p.ctrs[:i], p.ctrs[i+1:]...)
			break
		}
	}
	return d, nil
}

// stopRemovePod times StopPodSandbox + RemovePodSandbox.
func (in *instance) stopRemovePod(ctx context.Context, p *pod) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	if _, err := in.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return 0, fmt.Errorf("StopPodSandbox: %w", err)
	}
	if _, err := in.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return 0, fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return time.Since(start), nil
}

// teardown stops and removes a pod's containers, then the pod, untimed.
func (in *instance) teardown(ctx context.Context, p *pod) error {
	for len(p.ctrs) > 0 {
		if _, err := in.stopRemoveContainer(ctx, p, p.ctrs[0]); err != nil {
			return err
		}
	}
	_, err := in.stopRemovePod(ctx, p)
	return err
}

// pull times PullImage and returns the daemon's peak RSS during it (the
// peak is reset just before, so it is the pull's own).
func (in *instance) pull(ctx context.Context, ref string) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	benchkit.ResetPeakRSS(in.proc.Pid())
	start := time.Now()
	_, err := in.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("PullImage %s: %w", ref, err)
	}
	return d, benchkit.PeakRSS(in.proc.Pid()), nil
}

// execSync times ExecSync of /bin/true.
func (in *instance) execSync(ctx context.Context, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	r, err := in.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"/bin/true"}, Timeout: 30})
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("ExecSync: %w", err)
	}
	if r.ExitCode != 0 {
		return 0, fmt.Errorf("ExecSync: exit code %d: %s", r.ExitCode, r.Stderr)
	}
	return d, nil
}
