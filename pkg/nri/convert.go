package nri

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// readSpec reads the OCI spec of a bundle directory.
func readSpec(dir string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	return &s, nil
}

// pod describes a sandbox to plugins: its identity and metadata from the
// request, its pause container's pid, namespaces and cgroup, its IPs and
// its pod-level resources.
func (n *NRI) pod(sb *sandbox.Sandbox) *api.PodSandbox {
	cfg := sb.Config
	md := cfg.GetMetadata()
	st := sb.Status()
	p := &api.PodSandbox{
		Id:             sb.ID,
		Name:           md.GetName(),
		Uid:            md.GetUid(),
		Namespace:      md.GetNamespace(),
		Labels:         maps.Clone(cfg.GetLabels()),
		Annotations:    maps.Clone(cfg.GetAnnotations()),
		RuntimeHandler: sb.RuntimeHandler,
		Pid:            uint32(st.Pid),
		Linux: &api.LinuxPodSandbox{
			CgroupParent: cfg.GetLinux().GetCgroupParent(),
			// UpdatePodSandboxResources, when kubelet has sent it, is newer
			// than the request.
			PodResources: criResources(st.Resources, cfg.GetLinux().GetResources()),
			PodOverhead:  criResources(st.Overhead, cfg.GetLinux().GetOverhead()),
		},
	}
	if st.Network != nil && !st.NetworkReleased {
		p.Ips = slices.Clone(st.Network.IPs)
	}
	if n.st.Sandboxes != nil {
		if spec, err := readSpec(n.st.Sandboxes.Dir(sb.ID)); err == nil && spec.Linux != nil {
			p.Linux.CgroupsPath = spec.Linux.CgroupsPath
			p.Linux.Namespaces = namespaces(spec.Linux.Namespaces, st.Pid)
			p.Linux.Resources = api.FromOCILinuxResources(spec.Linux.Resources, nil)
		}
	}
	return p
}

// namespaces lists a process's namespaces with their paths: a namespace
// the spec creates (no path) is the one the process, pid, lives in.
func namespaces(ns []specs.LinuxNamespace, pid int) []*api.LinuxNamespace {
	out := api.FromOCILinuxNamespaces(ns)
	if pid <= 0 {
		return out
	}
	for _, n := range out {
		if n.Path == "" {
			n.Path = fmt.Sprintf("/proc/%d/ns/%s", pid, procNSName(n.Type))
		}
	}
	return out
}

// procNSName maps an OCI namespace type to its name under /proc/PID/ns.
func procNSName(t string) string {
	switch t {
	case string(specs.NetworkNamespace):
		return "net"
	case string(specs.MountNamespace):
		return "mnt"
	}
	return t
}

// criResources converts recorded (protojson) or requested CRI resources
// to NRI's form; nil when there are none.
func criResources(recorded json.RawMessage, requested *runtimeapi.LinuxContainerResources) *api.LinuxResources {
	r := requested
	if len(recorded) > 0 {
		var m runtimeapi.LinuxContainerResources
		if err := protojson.Unmarshal(recorded, &m); err == nil {
			r = &m
		}
	}
	if r == nil {
		return nil
	}
	out := &api.LinuxResources{
		Cpu: &api.LinuxCPU{
			Cpus: r.GetCpusetCpus(),
			Mems: r.GetCpusetMems(),
		},
		Memory:  &api.LinuxMemory{},
		Unified: maps.Clone(r.GetUnified()),
	}
	if v := r.GetCpuShares(); v != 0 {
		out.Cpu.Shares = api.UInt64(uint64(v))
	}
	if v := r.GetCpuQuota(); v != 0 {
		out.Cpu.Quota = api.Int64(v)
	}
	if v := r.GetCpuPeriod(); v != 0 {
		out.Cpu.Period = api.UInt64(uint64(v))
	}
	if v := r.GetMemoryLimitInBytes(); v != 0 {
		out.Memory.Limit = api.Int64(v)
	}
	if v := r.GetMemorySwapLimitInBytes(); v != 0 {
		out.Memory.Swap = api.Int64(v)
	}
	for _, h := range r.GetHugepageLimits() {
		out.HugepageLimits = append(out.HugepageLimits, &api.HugepageLimit{PageSize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	return out
}

// containerState maps a record's state to NRI's. A container being
// created has no state yet.
func containerState(s container.State) api.ContainerState {
	switch s {
	case container.StateCreated:
		return api.ContainerState_CONTAINER_CREATED
	case container.StateRunning:
		return api.ContainerState_CONTAINER_RUNNING
	case container.StateExited:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}

// container describes a container to plugins: its identity, metadata and
// status from the record, everything else from spec. A nil spec is read
// from the bundle; a container without one (rolled back before it was
// written) is described by its record alone.
func (n *NRI) container(ctr *container.Container, spec *specs.Spec) *api.Container {
	cfg := ctr.Config
	st := ctr.Status()
	c := &api.Container{
		Id:            ctr.ID,
		PodSandboxId:  ctr.SandboxID,
		Name:          cfg.GetMetadata().GetName(),
		State:         containerState(st.State),
		Labels:        maps.Clone(cfg.GetLabels()),
		Annotations:   maps.Clone(cfg.GetAnnotations()),
		Pid:           uint32(st.Pid),
		CreatedAt:     ctr.CreatedAt.UnixNano(),
		ExitCode:      st.ExitCode,
		StatusReason:  st.Reason,
		StatusMessage: st.Message,
		Image:         image(ctr),
	}
	if !st.StartedAt.IsZero() {
		c.StartedAt = st.StartedAt.UnixNano()
	}
	if !st.FinishedAt.IsZero() {
		c.FinishedAt = st.FinishedAt.UnixNano()
	}
	if spec == nil && n.st.Containers != nil {
		spec, _ = readSpec(n.st.Containers.Dir(ctr.ID))
	}
	if spec == nil {
		return c
	}
	// The spec's annotations are the request's plus the runtime's own
	// (io.kubernetes.cri.*), as containerd reports them.
	if spec.Annotations != nil {
		c.Annotations = maps.Clone(spec.Annotations)
	}
	c.Mounts = api.FromOCIMounts(spec.Mounts)
	c.Hooks = api.FromOCIHooks(spec.Hooks)
	if p := spec.Process; p != nil {
		c.Args = slices.Clone(p.Args)
		c.Env = slices.Clone(p.Env)
		c.User = &api.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: slices.Clone(p.User.AdditionalGids)}
		for _, l := range p.Rlimits {
			c.Rlimits = append(c.Rlimits, &api.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
	}
	if l := spec.Linux; l != nil {
		c.Linux = &api.LinuxContainer{
			Namespaces:     api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:        api.FromOCILinuxDevices(l.Devices),
			Resources:      api.FromOCILinuxResources(currentResources(l.Resources, st.Resources), nil),
			CgroupsPath:    l.CgroupsPath,
			SeccompProfile: seccompProfile(cfg.GetLinux().GetSecurityContext().GetSeccomp()),
			Sysctl:         maps.Clone(l.Sysctl),
			NetDevices:     api.FromOCILinuxNetDevices(l.NetDevices),
		}
		if l.Seccomp != nil {
			// Unlike its siblings, NRI's converter does not take nil.
			c.Linux.SeccompPolicy = api.FromOCILinuxSeccomp(l.Seccomp)
		}
		if p := spec.Process; p != nil {
			if p.OOMScoreAdj != nil {
				c.Linux.OomScoreAdj = api.Int(*p.OOMScoreAdj)
			}
			c.Linux.IoPriority = api.FromOCILinuxIOPriority(p.IOPriority)
			c.Linux.Scheduler = api.FromOCILinuxScheduler(p.Scheduler)
		}
	}
	return c
}

// currentResources are the container's limits now: the record starts as
// the spec's resources and follows UpdateContainerResources and plugins'
// updates.
func currentResources(spec *specs.LinuxResources, recorded json.RawMessage) *specs.LinuxResources {
	if len(recorded) == 0 {
		return spec
	}
	var r specs.LinuxResources
	if err := json.Unmarshal(recorded, &r); err != nil {
		return spec
	}
	return &r
}

// image identifies the container's image. A container being created has
// only the name it was asked with.
func image(ctr *container.Container) *api.Image {
	img := &api.Image{Name: ctr.ImageName, ConfigDigest: ctr.ImageID}
	if img.Name == "" {
		img.Name = ctr.Config.GetImage().GetImage()
	}
	if _, digest, ok := strings.Cut(ctr.ImageRef, "@"); ok {
		img.Digest = digest
	}
	return img
}

// seccompProfile maps the CRI's seccomp profile to NRI's.
func seccompProfile(p *runtimeapi.SecurityProfile) *api.SecurityProfile {
	if p == nil {
		return nil
	}
	out := &api.SecurityProfile{LocalhostRef: p.GetLocalhostRef()}
	switch p.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		out.ProfileType = api.SecurityProfile_UNCONFINED
	case runtimeapi.SecurityProfile_Localhost:
		out.ProfileType = api.SecurityProfile_LOCALHOST
	default:
		out.ProfileType = api.SecurityProfile_RUNTIME_DEFAULT
	}
	return out
}
