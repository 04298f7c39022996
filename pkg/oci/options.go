package oci

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/oom"
)

// Features are the optional abilities of the OCI runtime that change what a
// spec may ask for, as `runc features` reports them.
type Features struct {
	// RecursiveReadOnly: the "rro" mount option (mount_setattr, Linux
	// 5.12+), needed for CRI mounts with recursive_read_only.
	RecursiveReadOnly bool
	// IDMapMounts: uidMappings/gidMappings on bind mounts, needed for
	// volumes of pods with a user namespace.
	IDMapMounts bool
}

// UserNamespace is a pod's user namespace. Every container of the pod shares
// it, so the same value goes to SandboxSpec and to each ContainerSpec.
type UserNamespace struct {
	// UIDMappings and GIDMappings map IDs in the pod to IDs on the host.
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// Path, for the sandbox only, is an existing user namespace (e.g. one
	// the caller pinned) to join instead of creating one. Containers always
	// join the sandbox's through /proc/<SandboxPid>/ns/user.
	Path string
}

// SandboxOptions describe a pod sandbox (pause) container.
type SandboxOptions struct {
	ID     string
	Config *runtimeapi.PodSandboxConfig
	// Image is the pause image's config: entrypoint, cmd, user, env.
	Image *ocispec.ImageConfig
	// ImageName is the pause image's name, recorded in an annotation.
	ImageName string
	// RootfsPath is the pause rootfs, absolute and mounted; the sandbox
	// gets it read-only.
	RootfsPath string
	// NetNSPath is the pod's network namespace; "" with host network, and
	// "" also lets the runtime create a fresh one.
	NetNSPath string
	// The pod's files. The pause process needs none of them; they are
	// recorded in annotations so that tools can find them from the spec.
	HostnamePath, ResolvConfPath, HostsPath string
	// ShmPath is the pod's /dev/shm (a tmpfs the caller mounted), "" with
	// host IPC. Recorded like the files above.
	ShmPath string
	// CgroupParent defaults to Config.Linux.CgroupParent.
	CgroupParent string
	// CgroupDriver is "cgroupfs" (or "") or "systemd".
	CgroupDriver string
	// OOM is the floor cri-rt itself is held to (see pkg/oom).
	OOM oom.Restriction
	// UserNS is the pod's user namespace, nil for none (see
	// UserNamespaceFromCRI).
	UserNS *UserNamespace
	// AppArmorEnabled says the host enforces AppArmor (see the function
	// of that name); when false no profile is set and asking for a
	// specific one is an error.
	AppArmorEnabled bool
	// AppArmorDefaultProfile is the (loaded) profile RuntimeDefault means;
	// "" leaves RuntimeDefault processes with cri-rt's own confinement.
	AppArmorDefaultProfile string
	// Annotations are added last, over the request's and the standard
	// ones: cri-rt's own sandbox annotations.
	Annotations map[string]string
	// Warnf, when set, receives what was adjusted rather than refused
	// (e.g. an oom_score_adj clamped to OOM.Floor) so the caller can log it.
	Warnf func(format string, args ...any)
}

// ContainerOptions describe a workload container of a pod.
type ContainerOptions struct {
	ID, SandboxID string
	Config        *runtimeapi.ContainerConfig
	SandboxConfig *runtimeapi.PodSandboxConfig
	// Image is the container image's config.
	Image *ocispec.ImageConfig
	// ImageName is recorded in an annotation; it defaults to the request's
	// user-specified image, else its image.
	ImageName string
	// RootfsPath is the container's rootfs, absolute and mounted
	// read-write. /etc/passwd and /etc/group are read from it, resolved
	// inside it: symlinks cannot lead out.
	RootfsPath string
	// SandboxPid is the pause process; the container joins the pod's
	// namespaces through /proc/<SandboxPid>/ns/*.
	SandboxPid int
	// TargetPid is the process whose PID namespace a container with PID
	// namespace mode TARGET joins.
	TargetPid int
	// NetNSPath is the pod's network namespace. Containers join the pause
	// process' namespace instead, which is the same one; it is accepted for
	// symmetry and not used.
	NetNSPath string
	// The pod's files, bind-mounted at /etc/hostname, /etc/resolv.conf,
	// /etc/hosts and /dev/shm unless the request mounts something there
	// itself; "" skips one. Without ShmPath, a host-IPC pod gets the host's
	// /dev/shm and any other pod a private tmpfs.
	HostnamePath, ResolvConfPath, HostsPath, ShmPath string
	// ImageVolumes maps container paths to host directories holding
	// mounted images (KEP-4639), sub-paths already resolved by the caller.
	// Request mounts with an image are looked up here; entries without such
	// a mount are mounted too.
	ImageVolumes map[string]string
	// CgroupParent defaults to SandboxConfig.Linux.CgroupParent.
	CgroupParent string
	// CgroupDriver is "cgroupfs" (or "") or "systemd".
	CgroupDriver string
	OOM          oom.Restriction
	// UserNS is the pod's user namespace, nil for none.
	UserNS   *UserNamespace
	Features Features
	// AppArmorEnabled and AppArmorDefaultProfile: see SandboxOptions.
	AppArmorEnabled        bool
	AppArmorDefaultProfile string
	// Annotations are added last, over the request's and the standard ones.
	Annotations map[string]string
	// Warnf: see SandboxOptions.
	Warnf func(format string, args ...any)
}

// UserNamespaceFromCRI turns a pod's user namespace options into the value
// SandboxSpec and ContainerSpec take: nil for the host's user namespace
// (no options, or mode NODE). Mode POD needs exactly one UID and one GID
// mapping, each starting at container ID 0, as containerd requires: the
// mappings also drive id-mapped mounts, which take a single range.
func UserNamespaceFromCRI(opts *runtimeapi.UserNamespace) (*UserNamespace, error) {
	const field = "linux.security_context.namespace_options.userns_options"
	if opts == nil {
		// Absent options are the host's namespace; only GetMode of a nil
		// message would read as POD, the zero value.
		return nil, nil
	}
	switch opts.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, invalidArg(field+".mode", "%s is not supported for user namespaces (only POD and NODE)", opts.GetMode())
	}
	uids, err := idMappings(field+".uids", opts.GetUids())
	if err != nil {
		return nil, err
	}
	gids, err := idMappings(field+".gids", opts.GetGids())
	if err != nil {
		return nil, err
	}
	return &UserNamespace{UIDMappings: uids, GIDMappings: gids}, nil
}

func idMappings(field string, in []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	if len(in) != 1 {
		return nil, invalidArg(field, "want exactly one mapping, got %d", len(in))
	}
	m := in[0]
	if m.GetContainerId() != 0 {
		return nil, invalidArg(field, "the mapping must start at container ID 0, got %d", m.GetContainerId())
	}
	if m.GetLength() == 0 {
		return nil, invalidArg(field, "the mapping has length 0")
	}
	if uint64(m.GetHostId())+uint64(m.GetLength()) > 1<<32 {
		return nil, invalidArg(field, "host IDs %d+%d overflow 32 bits", m.GetHostId(), m.GetLength())
	}
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// criMappings converts a CRI mount's own ID mappings.
func criMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	var out []specs.LinuxIDMapping
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}

func warnf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
