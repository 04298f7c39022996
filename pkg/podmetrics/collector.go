package podmetrics

import (
	"path"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Layers reports on the writable layers of containers, which live outside
// cgroups and procfs.
type Layers interface {
	// WritableLayerUsage returns the bytes and inodes that a container's
	// writable layer uses.
	WritableLayerUsage(containerID string) (bytes, inodes uint64, err error)
	// LayersRoot is a directory on the filesystem that holds the writable
	// layers, whose size and inodes bound them.
	LayersRoot() string
}

// Pod is what the collector needs to know of a ready pod sandbox.
type Pod struct {
	// ID is the sandbox ID; Name and Namespace are its metadata's.
	ID, Name, Namespace string
	// CgroupRel is the pod's cgroup (relative to the hierarchy roots),
	// "" when the pod has none; then the pod's usage is the sum of
	// SumCgroups (the pause container's and the running containers').
	CgroupRel  string
	SumCgroups []string
	// Pid is the pause process, whose network namespace is the pod's.
	Pid int
	// HostNetwork pods report no network metrics: the interfaces are the
	// host's.
	HostNetwork bool
	// CreatedAt is reported as the pod's start time.
	CreatedAt time.Time
	// Containers are the running containers of the pod.
	Containers []Container
}

// Container is what the collector needs to know of a running container.
type Container struct {
	// ID is the runtime's ID, Name the name in the pod's spec, Image the
	// image as the pod's spec names it.
	ID, Name, Image string
	// CgroupRel is the container's cgroup, relative to the hierarchy roots.
	CgroupRel string
	// Pid is the container's init process (for its ulimits).
	Pid       int
	StartedAt time.Time
	// Resources are the container's limits as last set; the spec metrics
	// take them over what the cgroup files say.
	Resources *runtimeapi.LinuxContainerResources
}

// Collector turns pods into CRI metrics. Its zero value reads nothing; set
// Layout (usually HostLayout()).
type Collector struct {
	Layout Layout
	// Layers, when set, gives the filesystem metrics of containers.
	Layers Layers
	// Now, when set, replaces time.Now (for tests).
	Now func() time.Time
}

// Collect returns the metrics of a pod and of its containers. What cannot
// be read (a cgroup removed meanwhile, a missing controller) is left out.
func (c *Collector) Collect(p *Pod) *runtimeapi.PodSandboxMetrics {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	ts := now.UnixNano()
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.ID}

	podID := ""
	var st *CgroupStats
	if p.CgroupRel != "" {
		podID = cgroupName(p.CgroupRel)
		st, _ = ReadCgroup(c.Layout, p.CgroupRel)
	} else {
		for _, rel := range p.SumCgroups {
			if s, err := ReadCgroup(c.Layout, rel); err == nil {
				if st == nil {
					st = &CgroupStats{}
				}
				st.Add(s)
			}
		}
	}
	pe := &emitter{ts: ts, labels: []string{"", podID, "", p.ID, p.Namespace, p.Name}}
	if st != nil {
		c.cgroupMetrics(pe, st)
	}
	pe.add(LastSeen, uint64(now.Unix()))
	if !p.CreatedAt.IsZero() {
		pe.add(StartTimeSeconds, uint64(p.CreatedAt.Unix()))
	}
	if p.Pid > 0 && !p.HostNetwork {
		if devs, err := ReadNetDev(c.Layout.Proc, p.Pid); err == nil {
			for _, d := range devs {
				pe.add(NetworkReceiveBytesTotal, d.RxBytes, d.Name)
				pe.add(NetworkReceivePacketsTotal, d.RxPackets, d.Name)
				pe.add(NetworkReceiveErrorsTotal, d.RxErrors, d.Name)
				pe.add(NetworkReceiveDroppedTotal, d.RxDropped, d.Name)
				pe.add(NetworkTransmitBytesTotal, d.TxBytes, d.Name)
				pe.add(NetworkTransmitPacketsTotal, d.TxPackets, d.Name)
				pe.add(NetworkTransmitErrorsTotal, d.TxErrors, d.Name)
				pe.add(NetworkTransmitDroppedTotal, d.TxDropped, d.Name)
			}
		}
	}
	out.Metrics = pe.out

	fs := c.layersFS()
	for i := range p.Containers {
		out.ContainerMetrics = append(out.ContainerMetrics, c.container(p, &p.Containers[i], now, fs))
	}
	return out
}

// fsInfo is the filesystem holding the writable layers.
type fsInfo struct {
	device                    string
	limit, inodes, inodesFree uint64
}

// layersFS statfs's the writable layers' filesystem; nil when unknown.
func (c *Collector) layersFS() *fsInfo {
	if c.Layers == nil {
		return nil
	}
	root := c.Layers.LayersRoot()
	var sfs unix.Statfs_t
	if root == "" || unix.Statfs(root, &sfs) != nil {
		return nil
	}
	fi := &fsInfo{
		device: root, limit: sfs.Blocks * uint64(sfs.Bsize),
		inodes: sfs.Files, inodesFree: sfs.Ffree,
	}
	var st unix.Stat_t
	if unix.Stat(root, &st) == nil {
		if major := uint64(unix.Major(st.Dev)); major != 0 {
			fi.device = DeviceName(c.Layout.Sys, major, uint64(unix.Minor(st.Dev)))
		}
	}
	return fi
}

func (c *Collector) container(p *Pod, ctr *Container, now time.Time, fs *fsInfo) *runtimeapi.ContainerMetrics {
	e := &emitter{ts: now.UnixNano(), labels: []string{ctr.Name, cgroupName(ctr.CgroupRel), ctr.Image, ctr.ID, p.Namespace, p.Name}}
	st, err := ReadCgroup(c.Layout, ctr.CgroupRel)
	if err != nil {
		st = &CgroupStats{}
	}
	st.Spec = withResources(st.Spec, ctr.Resources)
	c.cgroupMetrics(e, st)
	e.add(LastSeen, uint64(now.Unix()))
	if !ctr.StartedAt.IsZero() {
		e.add(StartTimeSeconds, uint64(ctr.StartedAt.Unix()))
	}
	if ctr.Pid > 0 {
		if ulimits, err := ReadUlimits(c.Layout.Proc, ctr.Pid); err == nil {
			for _, u := range ulimits {
				e.add(UlimitsSoft, u.Soft, u.Name)
			}
		}
	}
	if fs != nil {
		if bytes, _, err := c.Layers.WritableLayerUsage(ctr.ID); err == nil {
			e.add(FsUsageBytes, bytes, fs.device)
		}
		e.add(FsLimitBytes, fs.limit, fs.device)
		e.add(FsInodesTotal, fs.inodes, fs.device)
		e.add(FsInodesFree, fs.inodesFree, fs.device)
	}
	return &runtimeapi.ContainerMetrics{ContainerId: ctr.ID, Metrics: e.out}
}

// withResources overrides the cgroup's limits with the container's
// resources where those are set.
func withResources(s *SpecStats, r *runtimeapi.LinuxContainerResources) *SpecStats {
	if r == nil {
		return s
	}
	if s == nil {
		s = &SpecStats{}
	}
	if r.CpuPeriod > 0 {
		s.CPUPeriod = uint64(r.CpuPeriod)
	}
	if r.CpuQuota > 0 {
		s.CPUQuota = uint64(r.CpuQuota)
	}
	if r.CpuShares > 0 {
		s.CPUShares = uint64(r.CpuShares)
	}
	if r.MemoryLimitInBytes > 0 {
		s.MemoryLimit = uint64(r.MemoryLimitInBytes)
	}
	if r.MemorySwapLimitInBytes > 0 {
		s.MemorySwapLimit = uint64(r.MemorySwapLimitInBytes)
	}
	return s
}

// cgroupMetrics emits what a cgroup's stats hold.
func (c *Collector) cgroupMetrics(e *emitter, st *CgroupStats) {
	if s := st.CPU; s != nil {
		e.add(CPUUsageSecondsTotal, seconds(s.UsageNanos))
		e.add(CPUUserSecondsTotal, seconds(s.UserNanos))
		e.add(CPUSystemSecondsTotal, seconds(s.SystemNanos))
	}
	if s := st.CFS; s != nil {
		e.add(CPUCfsPeriodsTotal, s.Periods)
		e.add(CPUCfsThrottledPeriodsTotal, s.ThrottledPeriods)
		e.add(CPUCfsThrottledSecondsTotal, seconds(s.ThrottledNanos))
	}
	if m := st.Memory; m != nil {
		e.add(MemoryUsageBytes, m.Usage)
		e.add(MemoryMaxUsageBytes, m.MaxUsage)
		e.add(MemoryWorkingSetBytes, m.WorkingSet)
		e.add(MemoryCache, m.Cache)
		e.add(MemoryRSS, m.RSS)
		e.add(MemoryMappedFile, m.MappedFile)
		e.add(MemorySwap, m.Swap)
		e.add(MemoryKernelUsage, m.Kernel)
		e.add(MemoryFailcnt, m.Failcnt)
		e.add(MemoryFailuresTotal, m.PgFault, "pgfault", "container")
		e.add(MemoryFailuresTotal, m.PgMajFault, "pgmajfault", "container")
		e.add(MemoryFailuresTotal, m.HierPgFault, "pgfault", "hierarchy")
		e.add(MemoryFailuresTotal, m.HierPgMajFault, "pgmajfault", "hierarchy")
		e.add(OOMEventsTotal, m.OOMKills)
	}
	for _, h := range st.Hugetlb {
		e.add(HugetlbUsageBytes, h.Usage, h.PageSize)
		if h.HasMax {
			e.add(HugetlbMaxUsageBytes, h.MaxUsage, h.PageSize)
		}
	}
	if p := st.Pressure; p != nil {
		e.add(PressureCPUWaitingSeconds, seconds(p.CPUSome*1000))
		e.add(PressureCPUStalledSeconds, seconds(p.CPUFull*1000))
		e.add(PressureMemoryWaitingSeconds, seconds(p.MemorySome*1000))
		e.add(PressureMemoryStalledSeconds, seconds(p.MemoryFull*1000))
		e.add(PressureIOWaitingSeconds, seconds(p.IOSome*1000))
		e.add(PressureIOStalledSeconds, seconds(p.IOFull*1000))
	}
	for _, io := range st.IO {
		dev := DeviceName(c.Layout.Sys, io.Major, io.Minor)
		e.add(BlkioDeviceUsageTotal, io.Bytes, dev, strconv.FormatUint(io.Major, 10), strconv.FormatUint(io.Minor, 10), io.Op)
		switch io.Op {
		case "Read":
			e.add(FsReadsBytesTotal, io.Bytes, dev)
			e.add(FsReadsTotal, io.Ops, dev)
		case "Write":
			e.add(FsWritesBytesTotal, io.Bytes, dev)
			e.add(FsWritesTotal, io.Ops, dev)
		}
	}
	if p := st.Procs; p != nil {
		e.add(Processes, p.Processes)
		e.add(FileDescriptors, p.FDs)
		e.add(Sockets, p.Sockets)
	}
	switch {
	case st.Procs != nil && st.Procs.Processes > 0:
		e.add(Threads, st.Procs.Threads)
	case st.Pids != nil:
		e.add(Threads, st.Pids.Current)
	}
	if st.Pids != nil {
		e.add(ThreadsMax, st.Pids.Max)
	}
	if s := st.Spec; s != nil {
		e.add(SpecCPUPeriod, s.CPUPeriod)
		if s.CPUQuota > 0 {
			e.add(SpecCPUQuota, s.CPUQuota)
		}
		e.add(SpecCPUShares, s.CPUShares)
		e.add(SpecMemoryLimitBytes, s.MemoryLimit)
		e.add(SpecMemoryReservationBytes, s.MemoryReservation)
		e.add(SpecMemorySwapLimitBytes, s.MemorySwapLimit)
	}
}

// seconds turns nanoseconds into whole seconds, the CRI carrying integers.
func seconds(ns uint64) uint64 { return ns / uint64(time.Second) }

// cgroupName is cAdvisor's "id" label: the cgroup's path from the root.
func cgroupName(rel string) string { return path.Clean("/" + rel) }

// emitter builds the metrics of one pod or container, each labelled with
// labels (the values of baseLabelKeys) and its own extra values.
type emitter struct {
	ts     int64
	labels []string
	out    []*runtimeapi.Metric
}

func (e *emitter) add(name string, v uint64, extra ...string) {
	d := byName[name]
	if d == nil || len(extra) != len(d.extra) {
		// A programming error, which the package's tests catch; better a
		// missing metric than one that breaks kubelet's collector.
		return
	}
	vals := make([]string, 0, len(e.labels)+len(extra))
	vals = append(append(vals, e.labels...), extra...)
	e.out = append(e.out, &runtimeapi.Metric{
		Name: name, Timestamp: e.ts, MetricType: d.typ, LabelValues: vals,
		Value: &runtimeapi.UInt64Value{Value: v},
	})
}
