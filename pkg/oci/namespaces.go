package oci

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nsPath is how a container reaches a namespace of another process.
func nsPath(pid int, ns string) string {
	return fmt.Sprintf("/proc/%d/ns/%s", pid, ns)
}

func addNS(g *generate.Generator, typ specs.LinuxNamespaceType, path string) {
	// AddOrReplaceLinuxNamespace only fails for unknown types, and the
	// types here are constants.
	_ = g.AddOrReplaceLinuxNamespace(string(typ), path)
}

// sandboxNamespaces gives the pause container the pod's namespaces: it is
// their first member and holds them for the containers. With host network
// the pod also keeps the host's UTS namespace (hostname), as containerd
// does; the other modes are independent.
func sandboxNamespaces(g *generate.Generator, o *SandboxOptions) error {
	ns := o.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	g.ClearLinuxNamespaces()
	addNS(g, specs.MountNamespace, "")
	if ns.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		addNS(g, specs.NetworkNamespace, o.NetNSPath)
		addNS(g, specs.UTSNamespace, "")
		if h := o.Config.GetHostname(); h != "" {
			g.SetHostname(h)
		}
	}
	if ns.GetIpc() != runtimeapi.NamespaceMode_NODE {
		addNS(g, specs.IPCNamespace, "")
	}
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
	case runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER:
		// POD: pause is PID 1 of the namespace the containers join.
		// CONTAINER: each container gets its own; pause still needs one
		// so that it does not sit in the host's.
		addNS(g, specs.PIDNamespace, "")
	default:
		return invalidArg("linux.security_context.namespace_options.pid", "%s is not valid for a pod", ns.GetPid())
	}
	if o.UserNS != nil {
		if err := setUserNS(g, o.UserNS, o.UserNS.Path); err != nil {
			return err
		}
	}
	return nil
}

func setUserNS(g *generate.Generator, u *UserNamespace, path string) error {
	if len(u.UIDMappings) == 0 || len(u.GIDMappings) == 0 {
		return invalidArg("linux.security_context.namespace_options.userns_options", "user namespace without UID or GID mappings")
	}
	addNS(g, specs.UserNamespace, path)
	// The mappings are set even when joining an existing namespace: runc
	// checks them against the namespace, and tools read them from the spec.
	g.ClearLinuxUIDMappings()
	g.ClearLinuxGIDMappings()
	for _, m := range u.UIDMappings {
		g.AddLinuxUIDMapping(m.HostID, m.ContainerID, m.Size)
	}
	for _, m := range u.GIDMappings {
		g.AddLinuxGIDMapping(m.HostID, m.ContainerID, m.Size)
	}
	return nil
}

// containerNamespaces makes a container join its pod. Network, IPC and UTS
// are pod-level, so the sandbox's modes decide them: a host-mode namespace
// is simply not listed (the runtime stays in its own, the host's). The PID
// namespace is per container.
func containerNamespaces(g *generate.Generator, o *ContainerOptions, privileged bool) error {
	const field = "linux.security_context.namespace_options"
	pod := o.SandboxConfig.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ctr := o.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if o.SandboxPid <= 0 {
		return invalidArg("SandboxPid", "%d is not a process", o.SandboxPid)
	}
	g.ClearLinuxNamespaces()
	addNS(g, specs.MountNamespace, "")
	if pod.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		addNS(g, specs.NetworkNamespace, nsPath(o.SandboxPid, "net"))
		addNS(g, specs.UTSNamespace, nsPath(o.SandboxPid, "uts"))
	}
	if pod.GetIpc() != runtimeapi.NamespaceMode_NODE {
		addNS(g, specs.IPCNamespace, nsPath(o.SandboxPid, "ipc"))
	}
	switch ctr.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		addNS(g, specs.PIDNamespace, nsPath(o.SandboxPid, "pid"))
	case runtimeapi.NamespaceMode_CONTAINER:
		addNS(g, specs.PIDNamespace, "")
	case runtimeapi.NamespaceMode_NODE:
	case runtimeapi.NamespaceMode_TARGET:
		if o.TargetPid <= 0 {
			return invalidArg(field+".target_id", "target container %q has no running process", ctr.GetTargetId())
		}
		addNS(g, specs.PIDNamespace, nsPath(o.TargetPid, "pid"))
	default:
		return invalidArg(field+".pid", "unknown mode %d", ctr.GetPid())
	}

	// A container cannot leave its pod's user namespace: a request that
	// disagrees with the pod is a client bug, refused rather than guessed.
	if u := ctr.GetUsernsOptions(); u != nil {
		if (u.GetMode() == runtimeapi.NamespaceMode_POD) != (o.UserNS != nil) {
			return invalidArg(field+".userns_options.mode", "%s differs from the pod's user namespace", u.GetMode())
		}
	}
	if o.UserNS != nil {
		if err := setUserNS(g, o.UserNS, nsPath(o.SandboxPid, "user")); err != nil {
			return err
		}
	}

	// A cgroup namespace hides the host's cgroup paths; on cgroup v1, and
	// for privileged containers that may manage cgroups, containerd keeps
	// the host's, and so does cri-rt.
	if cgroupV2() && !privileged {
		addNS(g, specs.CgroupNamespace, "")
	}
	return nil
}

// sysctlNamespace tells which namespace makes a sysctl per pod, "" when
// none does: such a sysctl would change the whole node.
func sysctlNamespace(name string) string {
	switch {
	case strings.HasPrefix(name, "net."):
		return "network"
	case name == "kernel.sem",
		strings.HasPrefix(name, "kernel.shm"),
		strings.HasPrefix(name, "kernel.msg"),
		strings.HasPrefix(name, "fs.mqueue."):
		return "ipc"
	case name == "kernel.hostname", name == "kernel.domainname":
		return "uts"
	}
	return ""
}

// normalizeSysctl accepts kubelet's slash-separated form
// ("net/ipv4/conf/eth0.100/forwarding"), where dots belong to names.
func normalizeSysctl(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, name)
}

// sandboxSysctls validates the pod's sysctls and sets them on the pause
// container, whose namespaces the containers share. A sysctl of a namespace
// the pod shares with the host would change the host, so it is refused, as
// is one no namespace isolates.
func sandboxSysctls(g *generate.Generator, cfg *runtimeapi.PodSandboxConfig) error {
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNet := ns.GetNetwork() == runtimeapi.NamespaceMode_NODE
	hostIPC := ns.GetIpc() == runtimeapi.NamespaceMode_NODE
	for raw, value := range cfg.GetLinux().GetSysctls() {
		field := fmt.Sprintf("linux.sysctls[%q]", raw)
		name := normalizeSysctl(raw)
		switch sysctlNamespace(name) {
		case "network", "uts":
			if hostNet {
				return invalidArg(field, "sysctl %s cannot be set in a pod using the host network", name)
			}
		case "ipc":
			if hostIPC {
				return invalidArg(field, "sysctl %s cannot be set in a pod using the host IPC namespace", name)
			}
		default:
			return invalidArg(field, "sysctl %s is not namespaced and would change the node", name)
		}
		g.AddLinuxSysctl(name, value)
	}
	return nil
}
