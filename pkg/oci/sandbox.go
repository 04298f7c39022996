package oci

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// SandboxSpec builds the spec of a pod's pause container. Its only job is
// to hold the pod's namespaces, so it runs as locked down as the pod
// allows: read-only rootfs, no capabilities, no new privileges, and none of
// the pod's files bind-mounted (their paths are recorded in annotations).
func SandboxSpec(o SandboxOptions) (*specs.Spec, error) {
	const scField = "linux.security_context"
	if o.Config == nil {
		return nil, invalidArg("config", "missing")
	}
	if o.ID == "" {
		return nil, invalidArg("ID", "empty sandbox ID")
	}
	image := o.Image
	if image == nil {
		image = &ocispec.ImageConfig{}
	}
	sc := o.Config.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()

	g, err := newGenerator(o.RootfsPath, true)
	if err != nil {
		return nil, err
	}

	args := append(append([]string{}, image.Entrypoint...), image.Cmd...)
	if len(args) == 0 {
		return nil, invalidArg("sandbox image", "the pause image has neither an entrypoint nor a cmd")
	}
	g.SetProcessArgs(args)
	if err := setEnv(g, "", false, image, nil); err != nil {
		return nil, err
	}
	cwd, err := workingDir(nil, image)
	if err != nil {
		return nil, err
	}
	g.SetProcessCwd(cwd)

	u, err := resolveUser(o.RootfsPath, userRequest{
		field:        scField,
		uid:          sc.GetRunAsUser(),
		gid:          sc.GetRunAsGroup(),
		supplemental: sc.GetSupplementalGroups(),
		policy:       sc.GetSupplementalGroupsPolicy(),
	}, image)
	if err != nil {
		return nil, err
	}
	setUser(g, u)
	// pause only waits for signals: it needs no capability and must never
	// gain privileges.
	g.Config.Process.Capabilities = &specs.LinuxCapabilities{}
	g.SetProcessNoNewPrivileges(true)

	if err := sandboxNamespaces(g, &o); err != nil {
		return nil, err
	}
	// sysfs can only be mounted by the user namespace that owns the network
	// namespace; the pod's netns is created by cri-rt in the host's user
	// namespace, so a user-namespaced pod gets the host's /sys read-only.
	sysBind := o.UserNS != nil
	for _, m := range defaultMounts(privileged, sysBind, false) {
		if m.Destination == devShm {
			continue // the pod's /dev/shm is for its containers
		}
		g.AddMount(m)
	}
	if !privileged {
		g.Config.Linux.MaskedPaths = append([]string(nil), DefaultMaskedPaths...)
		g.Config.Linux.ReadonlyPaths = append([]string(nil), DefaultReadonlyPaths...)
	}
	if err := setDevices(g, nil, false); err != nil {
		return nil, err
	}
	if err := sandboxSysctls(g, o.Config); err != nil {
		return nil, err
	}

	if g.Config.Linux.Seccomp, err = seccompProfile(scField, sc.GetSeccomp(), sc.GetSeccompProfilePath(), privileged, g.Config); err != nil {
		return nil, err
	}
	aa, err := apparmorProfile(scField, sc.GetApparmor(), "", privileged, o.AppArmorEnabled, o.AppArmorDefaultProfile)
	if err != nil {
		return nil, err
	}
	g.SetProcessApparmorProfile(aa)

	// The pod's limits belong to its cgroup parent, which kubelet
	// manages; pause gets a minimal weight of its own. The pod's totals go
	// into annotations for runtimes that size VMs from them.
	g.SetLinuxResourcesCPUShares(sandboxCPUShares)
	if err := setOOMScoreAdj(g, sandboxOOMScoreAdj, o.OOM, o.Warnf); err != nil {
		return nil, err
	}
	parent := o.CgroupParent
	if parent == "" {
		parent = o.Config.GetLinux().GetCgroupParent()
	}
	cg, err := CgroupsPath(o.CgroupDriver, parent, o.ID)
	if err != nil {
		return nil, err
	}
	g.SetLinuxCgroupsPath(cg)

	setAnnotations(g, o.Config.GetAnnotations(), sandboxAnnotations(&o), o.Annotations)
	if err := Validate(g.Config); err != nil {
		return nil, err
	}
	return g.Config, nil
}
