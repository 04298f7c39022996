package oci

import (
	"fmt"
	"maps"
	"path"
	"strings"

	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/oom"
)

// Cgroup drivers, as in cri-rt's config.
const (
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
)

// Defaults for a container whose pod names no cgroup parent (crictl does
// not): cri-rt's own subtree, not the runtime's.
const (
	defaultCgroupfsParent = "/cri-rt"
	defaultSystemdSlice   = "system.slice"
	systemdScopePrefix    = "cri-rt"
)

// sandboxOOMScoreAdj keeps the pause process, whose death takes the whole
// pod's namespaces with it, nearly last in the OOM killer's list; kubelet's
// own value for it.
const sandboxOOMScoreAdj = -998

// sandboxCPUShares is the pause container's weight: it does nothing, and a
// low weight keeps its cgroup out of the way (containerd's value).
const sandboxCPUShares = 2

// CgroupsPath returns the cgroupsPath of a container's spec. With cgroupfs
// it is "<parent>/<id>" (parent defaulting to /cri-rt); with systemd it is
// "<slice>:cri-rt:<id>", which runc turns into a cri-rt-<id>.scope in the
// slice (system.slice by default).
func CgroupsPath(driver, parent, id string) (string, error) {
	const field = "linux.cgroup_parent"
	switch driver {
	case "", CgroupDriverCgroupfs:
		if parent == "" {
			parent = defaultCgroupfsParent
		}
		return path.Join("/", parent, id), nil
	case CgroupDriverSystemd:
		slice := defaultSystemdSlice
		if parent != "" {
			// Only the last element names the slice; systemd derives
			// the hierarchy from the dashes in it. critest sends
			// "/test.slice", kubelet "kubepods-burstable-pod<uid>.slice".
			slice = path.Base(parent)
		}
		if !strings.HasSuffix(slice, ".slice") || slice == ".slice" {
			return "", invalidArg(field, "%q is not a systemd slice (like kubepods-pod1.slice) as the systemd cgroup driver needs", parent)
		}
		return slice + ":" + systemdScopePrefix + ":" + id, nil
	}
	return "", fmt.Errorf("unknown cgroup driver %q", driver)
}

// setResources applies a container's CPU, memory, hugepage and unified
// (cgroup v2) limits. A limit of 0 means none, as in the CRI.
func setResources(g *generate.Generator, r *runtimeapi.LinuxContainerResources, warn func(string, ...any)) error {
	const field = "linux.resources"
	if r == nil {
		return nil
	}
	if r.GetCpuShares() < 0 {
		return invalidArg(field+".cpu_shares", "%d is negative", r.GetCpuShares())
	}
	if r.GetCpuPeriod() < 0 {
		return invalidArg(field+".cpu_period", "%d is negative", r.GetCpuPeriod())
	}
	if r.GetCpuQuota() < -1 {
		return invalidArg(field+".cpu_quota", "%d is below -1 (unlimited)", r.GetCpuQuota())
	}
	if r.GetMemoryLimitInBytes() < 0 {
		return invalidArg(field+".memory_limit_in_bytes", "%d is negative", r.GetMemoryLimitInBytes())
	}
	if r.GetMemorySwapLimitInBytes() < -1 {
		return invalidArg(field+".memory_swap_limit_in_bytes", "%d is below -1 (unlimited)", r.GetMemorySwapLimitInBytes())
	}
	if v := r.GetCpuPeriod(); v != 0 {
		g.SetLinuxResourcesCPUPeriod(uint64(v))
	}
	if v := r.GetCpuQuota(); v != 0 {
		g.SetLinuxResourcesCPUQuota(v)
	}
	if v := r.GetCpuShares(); v != 0 {
		g.SetLinuxResourcesCPUShares(uint64(v))
	}
	if v := r.GetCpusetCpus(); v != "" {
		g.SetLinuxResourcesCPUCpus(v)
	}
	if v := r.GetCpusetMems(); v != "" {
		g.SetLinuxResourcesCPUMems(v)
	}
	limit, swap := r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes()
	if limit != 0 {
		g.SetLinuxResourcesMemoryLimit(limit)
		// No swap beyond the limit unless asked for, as containerd and
		// kubelet's NoSwap behaviour expect.
		if swap == 0 {
			swap = limit
		}
	}
	if swap != 0 {
		if swapAvailable() {
			g.SetLinuxResourcesMemorySwap(swap)
		} else if r.GetMemorySwapLimitInBytes() != 0 {
			warnf(warn, "memory_swap_limit_in_bytes ignored: the kernel has no swap accounting")
		}
	}
	if hp := r.GetHugepageLimits(); len(hp) > 0 {
		if hugetlbAvailable() {
			for i, h := range hp {
				if h.GetPageSize() == "" {
					return invalidArg(fmt.Sprintf("%s.hugepage_limits[%d].page_size", field, i), "empty")
				}
				g.AddLinuxResourcesHugepageLimit(h.GetPageSize(), h.GetLimit())
			}
		} else {
			// containerd's tolerate_missing_hugetlb_controller default:
			// kubelet sends limits for every size, used or not.
			warnf(warn, "hugepage limits ignored: the hugetlb cgroup controller is not available")
		}
	}
	if u := r.GetUnified(); len(u) > 0 {
		m := map[string]string{}
		maps.Copy(m, u)
		g.SetLinuxResourcesUnified(m)
	}
	return nil
}

// setOOMScoreAdj sets the process' oom_score_adj, raised to what cri-rt
// itself may set (see pkg/oom): a clamp is reported, not refused, because
// the kernel would refuse the lower value anyway and the pod should run.
func setOOMScoreAdj(g *generate.Generator, requested int64, r oom.Restriction, warn func(string, ...any)) error {
	if requested < oom.Min || requested > oom.Max {
		return invalidArg("linux.resources.oom_score_adj", "%d is out of range %d..%d", requested, oom.Min, oom.Max)
	}
	v, ok := r.Clamp(int(requested))
	if !ok {
		warnf(warn, "oom_score_adj %d raised to %d: cri-rt cannot lower scores below its own (no CAP_SYS_RESOURCE)", requested, v)
	}
	g.SetProcessOOMScoreAdj(v)
	return nil
}
