package nri

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/container"
)

// updateContainers is the adaptation's UpdateFn: updates a plugin asks
// for on its own. It returns those that failed and may not be ignored;
// the plugin hears of them.
func (n *NRI) updateContainers(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	return n.applyUpdates(ctx, updates), nil
}

// applyUpdates applies plugins' resource updates to containers through
// the OCI runtime and returns those that failed and may not be ignored.
func (n *NRI) applyUpdates(ctx context.Context, updates []*api.ContainerUpdate) (failed []*api.ContainerUpdate) {
	logger := klog.FromContext(ctx)
	for _, u := range updates {
		err := n.update(ctx, u)
		switch {
		case err == nil:
		case u.GetIgnoreFailure():
			logger.V(2).Info("NRI container update failed; the plugin lets it go", "container", u.GetContainerId(), "err", err)
		default:
			logger.Error(err, "NRI container update failed", "container", u.GetContainerId())
			failed = append(failed, u)
		}
	}
	return failed
}

// update applies one update to a created or running container and records
// the new limits, as UpdateContainerResources does, so ContainerStatus and
// later plugin requests report them.
func (n *NRI) update(ctx context.Context, u *api.ContainerUpdate) error {
	res := u.GetLinux().GetResources()
	if res == nil {
		return nil
	}
	if n.st.ContainerStore == nil || n.st.SandboxStore == nil || n.st.Runtimes == nil {
		return fmt.Errorf("container %s: %w", u.GetContainerId(), errdefs.ErrNotFound)
	}
	ctr, err := n.st.ContainerStore.Get(u.GetContainerId())
	if err != nil {
		return err
	}
	st := ctr.Status()
	if st.State != container.StateCreated && st.State != container.StateRunning {
		return fmt.Errorf("container %s is %s: %w", ctr.ID, st.State, errdefs.ErrFailedPrecondition)
	}
	handler := ""
	if sb, err := n.st.SandboxStore.Get(ctr.SandboxID); err == nil {
		handler = sb.RuntimeHandler
	}
	rt, err := n.st.Runtimes.Get(handler)
	if err != nil {
		return err
	}
	oci := res.ToOCI()
	if err := rt.Update(ctx, ctr.ID, oci); err != nil {
		return fmt.Errorf("updating resources of container %s: %w", ctr.ID, err)
	}
	var cur specs.LinuxResources
	if len(st.Resources) > 0 {
		if err := json.Unmarshal(st.Resources, &cur); err != nil {
			return fmt.Errorf("recorded resources of container %s: %w", ctr.ID, err)
		}
	}
	mergeResources(&cur, oci)
	raw, err := json.Marshal(&cur)
	if err != nil {
		return err
	}
	return ctr.Update(func(s *container.Status) error { s.Resources = raw; return nil })
}

// mergeResources sets in dst what src sets: an update names only what
// changes.
func mergeResources(dst, src *specs.LinuxResources) {
	if c := src.CPU; c != nil {
		if dst.CPU == nil {
			dst.CPU = &specs.LinuxCPU{}
		}
		d := dst.CPU
		setIf(&d.Shares, c.Shares)
		setIf(&d.Quota, c.Quota)
		setIf(&d.Period, c.Period)
		setIf(&d.RealtimeRuntime, c.RealtimeRuntime)
		setIf(&d.RealtimePeriod, c.RealtimePeriod)
		if c.Cpus != "" {
			d.Cpus = c.Cpus
		}
		if c.Mems != "" {
			d.Mems = c.Mems
		}
	}
	if m := src.Memory; m != nil {
		if dst.Memory == nil {
			dst.Memory = &specs.LinuxMemory{}
		}
		d := dst.Memory
		setIf(&d.Limit, m.Limit)
		setIf(&d.Reservation, m.Reservation)
		setIf(&d.Swap, m.Swap)
		setIf(&d.Swappiness, m.Swappiness)
		setIf(&d.DisableOOMKiller, m.DisableOOMKiller)
		setIf(&d.UseHierarchy, m.UseHierarchy)
	}
	if src.Pids != nil {
		dst.Pids = src.Pids
	}
	for _, h := range src.HugepageLimits {
		replaced := false
		for i := range dst.HugepageLimits {
			if dst.HugepageLimits[i].Pagesize == h.Pagesize {
				dst.HugepageLimits[i], replaced = h, true
			}
		}
		if !replaced {
			dst.HugepageLimits = append(dst.HugepageLimits, h)
		}
	}
	for k, v := range src.Unified {
		if dst.Unified == nil {
			dst.Unified = map[string]string{}
		}
		dst.Unified[k] = v
	}
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

// evict stops, at once, the containers plugins want gone, in the
// background: stopping tells plugins again (StopContainer), which must not
// wait for the hook that asked for it.
func (n *NRI) evict(ctx context.Context, evictions []*api.ContainerEviction) {
	if len(evictions) == 0 || n.st.Containers == nil {
		return
	}
	logger := klog.FromContext(ctx)
	bg := klog.NewContext(context.Background(), logger)
	for _, e := range evictions {
		go func() {
			logger.Info("Evicting a container at an NRI plugin's request", "container", e.GetContainerId(), "reason", e.GetReason())
			if err := n.st.Containers.Stop(bg, e.GetContainerId(), 0); err != nil {
				logger.Error(err, "Evicting a container", "container", e.GetContainerId())
			}
		}()
	}
}
