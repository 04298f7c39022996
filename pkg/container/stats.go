package container

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/cgstats"
	"github.com/cri-rt/cri-rt/pkg/oci"
	"github.com/cri-rt/cri-rt/pkg/podmetrics"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
	"github.com/cri-rt/cri-rt/pkg/snapshot"
)

// usageTTL bounds how often a writable layer is walked for its size: the
// walk costs a stat per file, and kubelet asks every few seconds.
const usageTTL = 10 * time.Second

type usageEntry struct {
	at            time.Time
	bytes, inodes uint64
}

type statsCache struct {
	rates cgstats.Rates
	mu    sync.Mutex
	usage map[string]usageEntry
}

func (c *Controller) cache() *statsCache {
	c.statsOnce.Do(func() { c.stats = &statsCache{usage: map[string]usageEntry{}} })
	return c.stats
}

// writableLayerUsage returns the bytes and inodes of a container's upper dir.
func (c *Controller) writableLayerUsage(id string) (uint64, uint64) {
	sc := c.cache()
	sc.mu.Lock()
	e, ok := sc.usage[id]
	sc.mu.Unlock()
	if ok && time.Since(e.at) < usageTTL {
		return e.bytes, e.inodes
	}
	upper, err := c.Snapshots.UpperDir(snapshotKey(id))
	if err != nil {
		return 0, 0
	}
	b, i := snapshot.DiskUsage(upper)
	e = usageEntry{at: time.Now(), bytes: uint64(b), inodes: uint64(i)}
	sc.mu.Lock()
	sc.usage[id] = e
	sc.mu.Unlock()
	return e.bytes, e.inodes
}

// Stats returns the CRI stats of a container: CPU, memory and writable
// layer; a container without a cgroup (not running) reports no CPU or memory.
func (c *Controller) Stats(ctx context.Context, ctr *Container) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: ctr.ID, Metadata: ctr.Config.GetMetadata(), Labels: ctr.Config.GetLabels(), Annotations: ctr.Config.GetAnnotations(),
		},
	}
	bytes, inodes := c.writableLayerUsage(ctr.ID)
	out.WritableLayer = &runtimeapi.FilesystemUsage{
		Timestamp:  now,
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: c.Snapshots.Root()},
		UsedBytes:  &runtimeapi.UInt64Value{Value: bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	rel := CgroupRel(ctr.CgroupPath, c.Config.CgroupDriver)
	if st, err := cgstats.Read(rel); err == nil && ctr.Status().State == StateRunning {
		out.Cpu, out.Memory = criCPU(st, c.cache().rates.NanoCores(ctr.ID, st)), criMemory(st)
	} else {
		c.cache().rates.Forget(ctr.ID)
	}
	return out
}

func criCPU(st *cgstats.Stats, nanoCores uint64) *runtimeapi.CpuUsage {
	return &runtimeapi.CpuUsage{
		Timestamp:            st.Timestamp.UnixNano(),
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsageNanos},
		UsageNanoCores:       &runtimeapi.UInt64Value{Value: nanoCores},
	}
}

func criMemory(st *cgstats.Stats) *runtimeapi.MemoryUsage {
	m := &runtimeapi.MemoryUsage{
		Timestamp:       st.Timestamp.UnixNano(),
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.WorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: st.RSS},
		PageFaults:      &runtimeapi.UInt64Value{Value: st.PageFaults},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MajorPageFaults},
	}
	if st.MemoryLimit > 0 {
		m.AvailableBytes = &runtimeapi.UInt64Value{Value: st.MemoryLimit - min(st.MemoryLimit, st.WorkingSet)}
	}
	return m
}

// ContainerStats finds a container and returns its stats.
func (c *Controller) ContainerStats(ctx context.Context, id string) (*runtimeapi.ContainerStats, error) {
	ctr, err := c.Store.Get(id)
	if err != nil {
		return nil, err
	}
	if ctr.Status().State == StateCreating {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return c.Stats(ctx, ctr), nil
}

// PodStats returns a sandbox's stats: its pod cgroup (or the sum of its
// containers' when the pod has no cgroup parent), the network of its
// namespace, its process count, and each container's stats.
func (c *Controller) PodStats(ctx context.Context, sb *sandbox.Sandbox) *runtimeapi.PodSandboxStats {
	now := time.Now()
	out := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: sb.ID, Metadata: sb.Config.GetMetadata(), Labels: sb.Config.GetLabels(), Annotations: sb.Config.GetAnnotations(),
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{},
	}
	var ctrs []*runtimeapi.ContainerStats
	for _, ctr := range c.Store.InSandbox(sb.ID) {
		if ctr.Status().State != StateCreating {
			ctrs = append(ctrs, c.Stats(ctx, ctr))
		}
	}
	out.Linux.Containers = ctrs
	st := sb.Status()
	if st.State != sandbox.StateReady {
		return out
	}
	var pod *cgstats.Stats
	if parent := sb.Config.GetLinux().GetCgroupParent(); parent != "" {
		if path, err := oci.CgroupsPath(c.Config.CgroupDriver, parent, "x"); err == nil {
			pod, _ = cgstats.Read(parentOf(CgroupRel(path, c.Config.CgroupDriver)))
		}
	}
	if pod == nil {
		// Sum the pause container and the workload containers.
		pod = &cgstats.Stats{Timestamp: now}
		paths := []string{}
		if p, err := oci.CgroupsPath(c.Config.CgroupDriver, "", sb.ID); err == nil {
			paths = append(paths, CgroupRel(p, c.Config.CgroupDriver))
		}
		for _, ctr := range c.Store.InSandbox(sb.ID) {
			if ctr.Status().State == StateRunning {
				paths = append(paths, CgroupRel(ctr.CgroupPath, c.Config.CgroupDriver))
			}
		}
		for _, p := range paths {
			if s, err := cgstats.Read(p); err == nil {
				pod.CPUUsageNanos += s.CPUUsageNanos
				pod.MemoryUsage += s.MemoryUsage
				pod.WorkingSet += s.WorkingSet
				pod.RSS += s.RSS
				pod.PageFaults += s.PageFaults
				pod.MajorPageFaults += s.MajorPageFaults
				pod.Processes += s.Processes
			}
		}
	}
	out.Linux.Cpu = criCPU(pod, c.cache().rates.NanoCores("pod-"+sb.ID, pod))
	out.Linux.Memory = criMemory(pod)
	out.Linux.Process = &runtimeapi.ProcessUsage{Timestamp: now.UnixNano(), ProcessCount: &runtimeapi.UInt64Value{Value: pod.Processes}}
	if devs, err := podmetrics.ReadNetDev("/proc", st.Pid); err == nil && sb.NetNSPath != "" {
		ns := &runtimeapi.NetworkUsage{Timestamp: now.UnixNano()}
		for _, d := range devs { // the loopback left out
			iface := &runtimeapi.NetworkInterfaceUsage{
				Name: d.Name, RxBytes: &runtimeapi.UInt64Value{Value: d.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: d.RxErrors},
				TxBytes: &runtimeapi.UInt64Value{Value: d.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: d.TxErrors},
			}
			if d.Name == "eth0" {
				ns.DefaultInterface = iface
			} else {
				ns.Interfaces = append(ns.Interfaces, iface)
			}
		}
		out.Linux.Network = ns
	}
	return out
}

func parentOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
