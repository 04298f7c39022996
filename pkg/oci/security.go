package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCapabilities is the capability set of an unprivileged container:
// containerd's and docker's default.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths protect the host's /proc and
// /sys details from an unprivileged container; they are containerd's and
// kubelet's defaults.
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// capabilities computes the container's capability sets. Defaults and
// add_capabilities go to the bounding, effective and permitted sets; the
// inheritable and ambient sets stay empty (containerd dropped inheritable
// for CVE-2022-24769) except for add_ambient_capabilities, which by the
// CRI's definition go to every set. "ALL" is handled first, so that
// add [ALL] drop [X] means everything but X and add [X] drop [ALL] means only X.
func capabilities(c *runtimeapi.Capability, privileged bool) (*specs.LinuxCapabilities, error) {
	const field = "linux.security_context.capabilities"
	all, err := hostCapabilities()
	if err != nil {
		return nil, fmt.Errorf("list the kernel's capabilities: %w", err)
	}
	if privileged {
		return &specs.LinuxCapabilities{
			Bounding:  slices.Clone(all),
			Effective: slices.Clone(all),
			Permitted: slices.Clone(all),
		}, nil
	}
	add, addAll, err := capList(field+".add_capabilities", c.GetAddCapabilities())
	if err != nil {
		return nil, err
	}
	drop, dropAll, err := capList(field+".drop_capabilities", c.GetDropCapabilities())
	if err != nil {
		return nil, err
	}
	ambient, ambientAll, err := capList(field+".add_ambient_capabilities", c.GetAddAmbientCapabilities())
	if err != nil {
		return nil, err
	}
	if ambientAll {
		return nil, invalidArg(field+".add_ambient_capabilities", "ALL is not allowed")
	}

	set := slices.Clone(DefaultCapabilities)
	if addAll {
		set = slices.Clone(all)
	}
	if dropAll {
		set = nil
	}
	set = union(set, add)
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drop, c) })
	ambient = slices.DeleteFunc(ambient, func(c string) bool { return slices.Contains(drop, c) })
	set = union(set, ambient)

	caps := &specs.LinuxCapabilities{
		Bounding:  set,
		Effective: slices.Clone(set),
		Permitted: slices.Clone(set),
	}
	if len(ambient) > 0 {
		// The kernel keeps a capability ambient only while it is also
		// permitted and inheritable.
		caps.Inheritable = slices.Clone(ambient)
		caps.Ambient = slices.Clone(ambient)
	}
	return caps, nil
}

// capList normalizes CRI capability names ("NET_ADMIN", "cap_net_admin")
// to "CAP_NET_ADMIN" and reports whether "ALL" was among them.
func capList(field string, in []string) (caps []string, all bool, err error) {
	for i, c := range in {
		n := strings.ToUpper(strings.TrimSpace(c))
		if n == "ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !knownCapabilities()[n] {
			return nil, false, invalidArg(fmt.Sprintf("%s[%d]", field, i), "unknown capability %q", c)
		}
		caps = union(caps, []string{n})
	}
	return caps, all, nil
}

func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}

// maskedPaths returns the masked and read-only paths. The request's lists
// replace the defaults when given. kubelet always sends the defaults for
// procMount Default and empty lists for Unmasked, which protobuf cannot tell
// from "not set"; kubelet allows Unmasked only with a user namespace, so
// there empty lists are taken at their word. Privileged containers see the
// host's /proc and /sys unmasked, as in containerd.
func maskedPaths(sc *runtimeapi.LinuxContainerSecurityContext, privileged, userns bool) (masked, readonly []string, err error) {
	const field = "linux.security_context"
	if privileged {
		return nil, nil, nil
	}
	masked, readonly = sc.GetMaskedPaths(), sc.GetReadonlyPaths()
	if len(masked) == 0 && len(readonly) == 0 && userns {
		return nil, nil, nil
	}
	if len(masked) == 0 {
		masked = DefaultMaskedPaths
	}
	if len(readonly) == 0 {
		readonly = DefaultReadonlyPaths
	}
	for i, p := range masked {
		if !isAbs(p) {
			return nil, nil, invalidArg(fmt.Sprintf("%s.masked_paths[%d]", field, i), "%q is not an absolute path", p)
		}
	}
	for i, p := range readonly {
		if !isAbs(p) {
			return nil, nil, invalidArg(fmt.Sprintf("%s.readonly_paths[%d]", field, i), "%q is not an absolute path", p)
		}
	}
	return slices.Clone(masked), slices.Clone(readonly), nil
}

// Deprecated string forms of security profiles, still sent by old clients.
const (
	profileRuntimeDefault = "runtime/default"
	profileDockerDefault  = "docker/default"
	profileUnconfined     = "unconfined"
	profileLocalhost      = "localhost/"
)

// securityProfile resolves the structured profile, falling back to the
// deprecated string field.
func securityProfile(field string, sp *runtimeapi.SecurityProfile, deprecated string) (*runtimeapi.SecurityProfile, error) {
	if sp != nil {
		return sp, nil
	}
	switch {
	case deprecated == "":
		return nil, nil
	case deprecated == profileRuntimeDefault, deprecated == profileDockerDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case deprecated == profileUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case strings.HasPrefix(deprecated, profileLocalhost):
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: strings.TrimPrefix(deprecated, profileLocalhost)}, nil
	}
	return nil, invalidArg(field, "unknown profile %q", deprecated)
}

// seccompProfile computes the seccomp filter, nil for none. It must run
// after the capabilities are final: the default profile allows the syscalls
// of the capabilities the process holds (e.g. sethostname with SYS_ADMIN).
// No profile at all means unconfined, as critest and containerd have it;
// kubelet sends RuntimeDefault explicitly when it wants the default.
// Privileged containers run unconfined whatever was asked.
func seccompProfile(field string, sp *runtimeapi.SecurityProfile, deprecated string, privileged bool, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	sp, err := securityProfile(field+".seccomp_profile_path", sp, deprecated)
	if err != nil || sp == nil || privileged {
		return nil, err
	}
	switch sp.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, fmt.Errorf("build the default seccomp profile: %w", err)
		}
		return p, nil
	case runtimeapi.SecurityProfile_Localhost:
		ref := strings.TrimPrefix(sp.GetLocalhostRef(), profileLocalhost)
		if !isAbs(ref) {
			return nil, invalidArg(field+".seccomp.localhost_ref", "%q is not an absolute path", sp.GetLocalhostRef())
		}
		body, err := os.ReadFile(ref)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, invalidArg(field+".seccomp.localhost_ref", "seccomp profile %s does not exist", ref)
			}
			return nil, fmt.Errorf("read seccomp profile %s: %w", ref, err)
		}
		// LoadProfile reads both the OCI form and docker's (with
		// includes/excludes per capability and architecture).
		p, err := seccomp.LoadProfile(string(body), s)
		if err != nil {
			return nil, invalidArg(field+".seccomp.localhost_ref", "seccomp profile %s: %v", ref, err)
		}
		return p, nil
	}
	return nil, invalidArg(field+".seccomp.profile_type", "unknown type %d", sp.GetProfileType())
}

// apparmorProfile computes the AppArmor profile name, "" to leave it unset.
// Where the host has no AppArmor only an explicit (Localhost) profile is an
// error: the default and unconfined cost nothing to skip, but running a
// workload without the profile it named would be a silent downgrade.
func apparmorProfile(field string, sp *runtimeapi.SecurityProfile, deprecated string, privileged, enabled bool, defaultProfile string) (string, error) {
	sp, err := securityProfile(field+".apparmor_profile", sp, deprecated)
	if err != nil {
		return "", err
	}
	if !enabled {
		if sp.GetProfileType() == runtimeapi.SecurityProfile_Localhost {
			return "", invalidArg(field+".apparmor", "AppArmor is not enabled on this node; cannot apply profile %q", sp.GetLocalhostRef())
		}
		return "", nil
	}
	if privileged {
		return profileUnconfined, nil
	}
	if sp == nil {
		// kubernetes/kubernetes#51746: no profile means the runtime default.
		sp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	}
	switch sp.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		return profileUnconfined, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return defaultProfile, nil
	case runtimeapi.SecurityProfile_Localhost:
		name := strings.TrimPrefix(sp.GetLocalhostRef(), profileLocalhost)
		if name == "" {
			return "", invalidArg(field+".apparmor.localhost_ref", "empty profile name")
		}
		loaded, err := apparmorProfileLoaded(name)
		if err != nil {
			return "", fmt.Errorf("list loaded AppArmor profiles: %w", err)
		}
		if !loaded {
			return "", invalidArg(field+".apparmor.localhost_ref", "AppArmor profile %q is not loaded", name)
		}
		return name, nil
	}
	return "", invalidArg(field+".apparmor.profile_type", "unknown type %d", sp.GetProfileType())
}
