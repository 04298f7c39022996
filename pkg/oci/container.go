package oci

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// ContainerSpec builds the spec of a workload container: its process from
// the request and the image, the pod's namespaces, mounts, devices,
// security settings and cgroup limits. It fails with an error wrapping
// errdefs.ErrInvalidArgument, naming the CRI field, when the request cannot
// be honoured.
func ContainerSpec(o ContainerOptions) (*specs.Spec, error) {
	const scField = "linux.security_context"
	if o.Config == nil {
		return nil, invalidArg("config", "missing")
	}
	if o.SandboxConfig == nil {
		return nil, invalidArg("sandbox_config", "missing")
	}
	if o.ID == "" || o.SandboxID == "" {
		return nil, invalidArg("ID", "empty container or sandbox ID")
	}
	image := o.Image
	if image == nil {
		image = &ocispec.ImageConfig{}
	}
	sc := o.Config.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !o.SandboxConfig.GetLinux().GetSecurityContext().GetPrivileged() {
		// kubelet checks this too; a container must not gain what its pod
		// was refused.
		return nil, invalidArg(scField+".privileged", "privileged container in a pod that is not privileged")
	}

	g, err := newGenerator(o.RootfsPath, sc.GetReadonlyRootfs())
	if err != nil {
		return nil, err
	}

	args, err := ProcessArgs(o.Config, image)
	if err != nil {
		return nil, err
	}
	g.SetProcessArgs(args)
	hostname := o.SandboxConfig.GetHostname()
	if hostname == "" {
		// Host-network pods get no hostname from kubelet: they share
		// the node's.
		if hostname, err = osHostname(); err != nil {
			return nil, fmt.Errorf("node hostname: %w", err)
		}
	}
	if err := setEnv(g, hostname, o.Config.GetTty(), image, o.Config.GetEnvs()); err != nil {
		return nil, err
	}
	cwd, err := workingDir(o.Config, image)
	if err != nil {
		return nil, err
	}
	g.SetProcessCwd(cwd)
	g.SetProcessTerminal(o.Config.GetTty())

	u, err := ResolveUser(o.RootfsPath, sc, image)
	if err != nil {
		return nil, err
	}
	setUser(g, u)

	if err := containerNamespaces(g, &o, privileged); err != nil {
		return nil, err
	}
	mounts, rootProp, err := containerMounts(&o, privileged)
	if err != nil {
		return nil, err
	}
	g.Config.Mounts = mounts
	if err := g.SetLinuxRootPropagation(rootProp); err != nil {
		return nil, err
	}
	if err := setDevices(g, o.Config.GetDevices(), privileged); err != nil {
		return nil, err
	}

	if g.Config.Process.Capabilities, err = capabilities(sc.GetCapabilities(), privileged); err != nil {
		return nil, err
	}
	if g.Config.Linux.MaskedPaths, g.Config.Linux.ReadonlyPaths, err = maskedPaths(sc, privileged, o.UserNS != nil); err != nil {
		return nil, err
	}
	g.SetProcessNoNewPrivileges(sc.GetNoNewPrivs())
	// After the capabilities: the default profile depends on them.
	if g.Config.Linux.Seccomp, err = seccompProfile(scField, sc.GetSeccomp(), sc.GetSeccompProfilePath(), privileged, g.Config); err != nil {
		return nil, err
	}
	aa, err := apparmorProfile(scField, sc.GetApparmor(), sc.GetApparmorProfile(), privileged, o.AppArmorEnabled, o.AppArmorDefaultProfile)
	if err != nil {
		return nil, err
	}
	g.SetProcessApparmorProfile(aa)

	res := o.Config.GetLinux().GetResources()
	if err := setResources(g, res, o.Warnf); err != nil {
		return nil, err
	}
	// Without resources the score is 0, not inherited: the runtime's own
	// score is cri-rt's, which is meant to outlive every container.
	if err := setOOMScoreAdj(g, res.GetOomScoreAdj(), o.OOM, o.Warnf); err != nil {
		return nil, err
	}
	parent := o.CgroupParent
	if parent == "" {
		parent = o.SandboxConfig.GetLinux().GetCgroupParent()
	}
	cg, err := CgroupsPath(o.CgroupDriver, parent, o.ID)
	if err != nil {
		return nil, err
	}
	g.SetLinuxCgroupsPath(cg)

	setAnnotations(g, o.Config.GetAnnotations(), containerAnnotations(&o), o.Annotations)
	if err := Validate(g.Config); err != nil {
		return nil, err
	}
	return g.Config, nil
}
