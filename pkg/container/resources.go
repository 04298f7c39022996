package container

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/monitor"
)

// CRIResources converts the stored OCI resources to the CRI's form.
func CRIResources(raw json.RawMessage) (*runtimeapi.ContainerResources, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var r specs.LinuxResources
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	l := &runtimeapi.LinuxContainerResources{}
	if r.CPU != nil {
		if r.CPU.Period != nil {
			l.CpuPeriod = int64(*r.CPU.Period)
		}
		if r.CPU.Quota != nil {
			l.CpuQuota = *r.CPU.Quota
		}
		if r.CPU.Shares != nil {
			l.CpuShares = int64(*r.CPU.Shares)
		}
		l.CpusetCpus, l.CpusetMems = r.CPU.Cpus, r.CPU.Mems
	}
	if r.Memory != nil {
		if r.Memory.Limit != nil {
			l.MemoryLimitInBytes = *r.Memory.Limit
		}
		if r.Memory.Swap != nil {
			l.MemorySwapLimitInBytes = *r.Memory.Swap
		}
	}
	for _, h := range r.HugepageLimits {
		l.HugepageLimits = append(l.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.Pagesize, Limit: h.Limit})
	}
	l.Unified = r.Unified
	return &runtimeapi.ContainerResources{Linux: l}, nil
}

// ociResources converts CRI resources to the OCI runtime's update form.
func ociResources(l *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{}}
	if l.CpuPeriod != 0 {
		p := uint64(l.CpuPeriod)
		r.CPU.Period = &p
	}
	if l.CpuQuota != 0 {
		q := l.CpuQuota
		r.CPU.Quota = &q
	}
	if l.CpuShares != 0 {
		s := uint64(l.CpuShares)
		r.CPU.Shares = &s
	}
	r.CPU.Cpus, r.CPU.Mems = l.CpusetCpus, l.CpusetMems
	if l.MemoryLimitInBytes != 0 {
		m := l.MemoryLimitInBytes
		r.Memory.Limit = &m
	}
	if l.MemorySwapLimitInBytes != 0 {
		s := l.MemorySwapLimitInBytes
		r.Memory.Swap = &s
	}
	for _, h := range l.HugepageLimits {
		r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.PageSize, Limit: h.Limit})
	}
	if len(l.Unified) > 0 {
		r.Unified = l.Unified
	}
	return r
}

// UpdateResources applies new limits to a created or running container and
// records them for ContainerStatus.
func (c *Controller) UpdateResources(ctx context.Context, id string, l *runtimeapi.LinuxContainerResources) error {
	if l == nil {
		return fmt.Errorf("UpdateContainerResources: no linux resources: %w", errdefs.ErrInvalidArgument)
	}
	ctr, err := c.Store.Get(id)
	if err != nil {
		return err
	}
	st := ctr.Status()
	if st.State != StateRunning && st.State != StateCreated {
		return fmt.Errorf("container %s is %s: %w", ctr.ID, st.State, errdefs.ErrFailedPrecondition)
	}
	rt, err := c.runtimeOf(ctr)
	if err != nil {
		return err
	}
	res := ociResources(l)
	if err := rt.Update(ctx, ctr.ID, res); err != nil {
		return fmt.Errorf("updating resources of container %s: %w", ctr.ID, err)
	}
	// Merge into what was recorded, so unset fields keep their values.
	var cur specs.LinuxResources
	_ = json.Unmarshal(st.Resources, &cur)
	if cur.CPU == nil {
		cur.CPU = &specs.LinuxCPU{}
	}
	if cur.Memory == nil {
		cur.Memory = &specs.LinuxMemory{}
	}
	mergeResources(&cur, res)
	raw, _ := json.Marshal(cur)
	return ctr.Update(func(s *Status) error { s.Resources = raw; return nil })
}

func mergeResources(dst, src *specs.LinuxResources) {
	if src.CPU.Period != nil {
		dst.CPU.Period = src.CPU.Period
	}
	if src.CPU.Quota != nil {
		dst.CPU.Quota = src.CPU.Quota
	}
	if src.CPU.Shares != nil {
		dst.CPU.Shares = src.CPU.Shares
	}
	if src.CPU.Cpus != "" {
		dst.CPU.Cpus = src.CPU.Cpus
	}
	if src.CPU.Mems != "" {
		dst.CPU.Mems = src.CPU.Mems
	}
	if src.Memory.Limit != nil {
		dst.Memory.Limit = src.Memory.Limit
	}
	if src.Memory.Swap != nil {
		dst.Memory.Swap = src.Memory.Swap
	}
	if len(src.HugepageLimits) > 0 {
		dst.HugepageLimits = src.HugepageLimits
	}
	if len(src.Unified) > 0 {
		dst.Unified = src.Unified
	}
}

// ReopenLog asks the container's monitor to reopen its log file.
func (c *Controller) ReopenLog(ctx context.Context, id string) error {
	ctr, err := c.Store.Get(id)
	if err != nil {
		return err
	}
	if ctr.Status().State != StateRunning {
		return fmt.Errorf("container %s is not running: %w", ctr.ID, errdefs.ErrFailedPrecondition)
	}
	return monitor.ReopenLog(ctx, c.MonitorDir(ctr.ID))
}
