package oci

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestCapabilities(t *testing.T) {
	all, _ := hostCapabilities()
	without := func(set []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(set), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name              string
		caps              *runtimeapi.Capability
		privileged        bool
		want, wantAmbient []string
		wantErr           string
	}{
		{name: "default", want: DefaultCapabilities},
		{name: "add", caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}}, want: append(slices.Clone(DefaultCapabilities), "CAP_NET_ADMIN")},
		{name: "add with prefix and lower case", caps: &runtimeapi.Capability{AddCapabilities: []string{"cap_sys_admin", "CAP_NET_ADMIN"}},
			want: append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN", "CAP_NET_ADMIN")},
		{name: "drop", caps: &runtimeapi.Capability{DropCapabilities: []string{"NET_RAW", "CAP_CHOWN"}}, want: without(DefaultCapabilities, "CAP_NET_RAW", "CAP_CHOWN")},
		{name: "add ALL", caps: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}, want: all},
		{name: "add ALL drop one", caps: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"CHOWN"}}, want: without(all, "CAP_CHOWN")},
		{name: "drop ALL", caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}, want: nil},
		{name: "drop ALL add one", caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_BIND_SERVICE"}, DropCapabilities: []string{"all"}}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add and drop same", caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"NET_ADMIN"}}, want: DefaultCapabilities},
		{name: "ambient", caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"NET_BIND_SERVICE"}},
			want: []string{"CAP_NET_BIND_SERVICE"}, wantAmbient: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "privileged ignores drop", privileged: true, caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}, want: all},
		{name: "unknown", caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "FLY"}}, wantErr: "add_capabilities[1]"},
		{name: "unknown drop", caps: &runtimeapi.Capability{DropCapabilities: []string{"CAP_"}}, wantErr: "drop_capabilities[0]"},
		{name: "ambient ALL", caps: &runtimeapi.Capability{AddAmbientCapabilities: []string{"ALL"}}, wantErr: "add_ambient_capabilities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.Config.Linux.SecurityContext.Capabilities = tc.caps
			o.Config.Linux.SecurityContext.Privileged = tc.privileged
			o.SandboxConfig.Linux.SecurityContext.Privileged = tc.privileged
			s, err := ContainerSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(sorted(set), sorted(tc.want)) {
					t.Errorf("%s = %v, want %v", name, set, tc.want)
				}
			}
			if !slices.Equal(c.Ambient, tc.wantAmbient) || !slices.Equal(c.Inheritable, tc.wantAmbient) {
				t.Errorf("ambient %v inheritable %v, want %v", c.Ambient, c.Inheritable, tc.wantAmbient)
			}
		})
	}
}

func TestPrivileged(t *testing.T) {
	o := containerOpts(t)
	o.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		Privileged:    true,
		MaskedPaths:   []string{"/proc/kcore"},
		ReadonlyPaths: []string{"/proc/sys"},
		Seccomp:       &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		Apparmor:      &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	o.AppArmorEnabled = true
	o.AppArmorDefaultProfile = "cri-rt-default"

	_, err := ContainerSpec(o)
	wantInvalid(t, err, "privileged")

	o.SandboxConfig.Linux.SecurityContext.Privileged = true
	s := mustContainer(t, o)
	all, _ := hostCapabilities()
	if !slices.Equal(sorted(s.Process.Capabilities.Bounding), sorted(all)) {
		t.Errorf("bounding %v, want all", s.Process.Capabilities.Bounding)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %v readonly %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp != nil {
		t.Error("privileged container has a seccomp profile")
	}
	if s.Process.ApparmorProfile != "unconfined" {
		t.Errorf("apparmor %q, want unconfined", s.Process.ApparmorProfile)
	}
	for _, dst := range []string{"/sys", "/sys/fs/cgroup"} {
		if m := findMount(s, dst); m == nil || !slices.Contains(m.Options, "rw") {
			t.Errorf("%s not writable: %+v", dst, m)
		}
	}
	if findNS(s, specs.CgroupNamespace) != nil {
		t.Error("privileged container got a cgroup namespace")
	}
	// All host devices, all allowed.
	if len(s.Linux.Devices) == 0 {
		t.Error("no host devices")
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Error("/dev/null missing from host devices")
	}
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/console" || d.Type == "p" || filepath.Dir(d.Path) == "/dev/pts" {
			t.Errorf("device %s should be skipped", d.Path)
		}
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" || r[0].Type != "" {
		t.Errorf("device rules %+v, want allow all", r)
	}
}

func TestUnprivilegedDefaults(t *testing.T) {
	s := mustContainer(t, containerOpts(t))
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths) || !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths) {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, dst := range []string{"/sys", "/sys/fs/cgroup"} {
		if m := findMount(s, dst); m == nil || !slices.Contains(m.Options, "ro") {
			t.Errorf("%s not read-only: %+v", dst, m)
		}
	}
	if findNS(s, specs.CgroupNamespace) == nil {
		t.Error("no cgroup namespace on cgroup v2")
	}
	if s.Process.NoNewPrivileges || s.Root.Readonly {
		t.Error("no_new_privs or readonly rootfs set without being asked")
	}
	if s.Linux.Seccomp != nil {
		t.Error("seccomp without a profile in the request")
	}
	if s.Process.ApparmorProfile != "" {
		t.Error("apparmor set while disabled")
	}
}

func TestCgroupNamespaceOnV1(t *testing.T) {
	setHost(t, &cgroupV2, func() bool { return false })
	if findNS(mustContainer(t, containerOpts(t)), specs.CgroupNamespace) != nil {
		t.Error("cgroup namespace on cgroup v1")
	}
}

func TestNoNewPrivsAndReadonlyRootfs(t *testing.T) {
	o := containerOpts(t)
	o.Config.Linux.SecurityContext.NoNewPrivs = true
	o.Config.Linux.SecurityContext.ReadonlyRootfs = true
	s := mustContainer(t, o)
	if !s.Process.NoNewPrivileges || !s.Root.Readonly {
		t.Fatal("no_new_privs or readonly rootfs not set")
	}
	// The pod's files follow the rootfs: read-only.
	for _, dst := range []string{etcHostname, etcHosts, resolvConf} {
		if m := findMount(s, dst); m == nil || !slices.Contains(m.Options, "ro") {
			t.Errorf("%s: %+v, want read-only", dst, m)
		}
	}
	if m := findMount(s, devShm); m == nil || !slices.Contains(m.Options, "rw") {
		t.Errorf("/dev/shm: %+v, want writable", m)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	for _, tc := range []struct {
		name               string
		masked, readonly   []string
		userns             bool
		wantMasked, wantRO []string
		wantErr            string
	}{
		{name: "defaults", wantMasked: DefaultMaskedPaths, wantRO: DefaultReadonlyPaths},
		{name: "request replaces masked", masked: []string{"/bin/ls"}, wantMasked: []string{"/bin/ls"}, wantRO: DefaultReadonlyPaths},
		{name: "request replaces readonly", readonly: []string{"/tmp"}, wantMasked: DefaultMaskedPaths, wantRO: []string{"/tmp"}},
		{name: "userns unmasked", userns: true},
		{name: "userns default sent by kubelet", userns: true, masked: DefaultMaskedPaths, readonly: DefaultReadonlyPaths, wantMasked: DefaultMaskedPaths, wantRO: DefaultReadonlyPaths},
		{name: "relative", masked: []string{"proc/kcore"}, wantErr: "masked_paths[0]"},
		{name: "relative readonly", readonly: []string{"/ok", "sys"}, wantErr: "readonly_paths[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.Config.Linux.SecurityContext.MaskedPaths = tc.masked
			o.Config.Linux.SecurityContext.ReadonlyPaths = tc.readonly
			if tc.userns {
				o.UserNS = testUserNS()
			}
			s, err := ContainerSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Linux.MaskedPaths, tc.wantMasked) || !slices.Equal(s.Linux.ReadonlyPaths, tc.wantRO) {
				t.Fatalf("masked %v readonly %v, want %v %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, tc.wantMasked, tc.wantRO)
			}
		})
	}
}

func hasSyscall(p *specs.LinuxSeccomp, name string) bool {
	for _, s := range p.Syscalls {
		if slices.Contains(s.Names, name) && s.Action == specs.ActAllow {
			return true
		}
	}
	return false
}

func TestSeccomp(t *testing.T) {
	dir := t.TempDir()
	blockChmod := filepath.Join(dir, "block-chmod.json")
	if err := os.WriteFile(blockChmod, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"defaultAction":`), 0o600); err != nil {
		t.Fatal(err)
	}
	profile := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name       string
		profile    *runtimeapi.SecurityProfile
		deprecated string
		privileged bool
		caps       []string
		check      func(*testing.T, *specs.LinuxSeccomp)
		wantErr    string
	}{
		{name: "nil is unconfined", check: wantNoSeccomp},
		{name: "empty profile is runtime default", profile: &runtimeapi.SecurityProfile{}, check: wantDefaultSeccomp(false)},
		{name: "runtime default", profile: profile(runtimeapi.SecurityProfile_RuntimeDefault, ""), check: wantDefaultSeccomp(false)},
		{name: "runtime default follows SYS_ADMIN", profile: profile(runtimeapi.SecurityProfile_RuntimeDefault, ""), caps: []string{"SYS_ADMIN"}, check: wantDefaultSeccomp(true)},
		{name: "unconfined", profile: profile(runtimeapi.SecurityProfile_Unconfined, ""), check: wantNoSeccomp},
		{name: "localhost", profile: profile(runtimeapi.SecurityProfile_Localhost, blockChmod), check: wantChmodBlocked},
		{name: "localhost with prefix", profile: profile(runtimeapi.SecurityProfile_Localhost, "localhost/"+blockChmod), check: wantChmodBlocked},
		{name: "localhost missing", profile: profile(runtimeapi.SecurityProfile_Localhost, filepath.Join(dir, "nope.json")), wantErr: "seccomp.localhost_ref"},
		{name: "localhost relative", profile: profile(runtimeapi.SecurityProfile_Localhost, "nope.json"), wantErr: "seccomp.localhost_ref"},
		{name: "localhost broken", profile: profile(runtimeapi.SecurityProfile_Localhost, broken), wantErr: "seccomp.localhost_ref"},
		{name: "privileged ignores localhost", privileged: true, profile: profile(runtimeapi.SecurityProfile_Localhost, blockChmod), check: wantNoSeccomp},
		{name: "deprecated runtime/default", deprecated: "runtime/default", check: wantDefaultSeccomp(false)},
		{name: "deprecated docker/default", deprecated: "docker/default", check: wantDefaultSeccomp(false)},
		{name: "deprecated unconfined", deprecated: "unconfined", check: wantNoSeccomp},
		{name: "deprecated localhost", deprecated: "localhost/" + blockChmod, check: wantChmodBlocked},
		{name: "deprecated unknown", deprecated: "fancy", wantErr: "seccomp_profile_path"},
		{name: "structured wins over deprecated", profile: profile(runtimeapi.SecurityProfile_Unconfined, ""), deprecated: "runtime/default", check: wantNoSeccomp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			sc := o.Config.Linux.SecurityContext
			sc.Seccomp, sc.SeccompProfilePath, sc.Privileged = tc.profile, tc.deprecated, tc.privileged
			o.SandboxConfig.Linux.SecurityContext.Privileged = tc.privileged
			if tc.caps != nil {
				sc.Capabilities = &runtimeapi.Capability{AddCapabilities: tc.caps}
			}
			s, err := ContainerSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s.Linux.Seccomp)
		})
	}
}

func wantNoSeccomp(t *testing.T, p *specs.LinuxSeccomp) {
	t.Helper()
	if p != nil {
		t.Fatalf("seccomp profile %v, want none", p.DefaultAction)
	}
}

func wantDefaultSeccomp(sysAdmin bool) func(*testing.T, *specs.LinuxSeccomp) {
	return func(t *testing.T, p *specs.LinuxSeccomp) {
		t.Helper()
		if p == nil || p.DefaultAction != specs.ActErrno {
			t.Fatalf("want docker's default profile, got %+v", p)
		}
		if !hasSyscall(p, "read") {
			t.Error("default profile does not allow read")
		}
		if got := hasSyscall(p, "sethostname"); got != sysAdmin {
			t.Errorf("sethostname allowed = %v, want %v (follows CAP_SYS_ADMIN)", got, sysAdmin)
		}
	}
}

func wantChmodBlocked(t *testing.T, p *specs.LinuxSeccomp) {
	t.Helper()
	if p == nil || p.DefaultAction != specs.ActAllow || len(p.Syscalls) != 1 || p.Syscalls[0].Action != specs.ActErrno ||
		!slices.Equal(p.Syscalls[0].Names, []string{"chmod", "fchmodat"}) {
		t.Fatalf("want the localhost profile, got %+v", p)
	}
}

func TestAppArmor(t *testing.T) {
	for _, tc := range []struct {
		name       string
		enabled    bool
		profile    *runtimeapi.SecurityProfile
		deprecated string
		want       string
		wantErr    string
	}{
		{name: "disabled default", want: ""},
		{name: "disabled unconfined", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, want: ""},
		{name: "disabled runtime default", profile: &runtimeapi.SecurityProfile{}, want: ""},
		{name: "disabled localhost", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p"}, wantErr: "apparmor"},
		{name: "disabled deprecated localhost", deprecated: "localhost/p", wantErr: "apparmor"},
		{name: "enabled nil is default", enabled: true, want: "cri-rt-default"},
		{name: "enabled unconfined", enabled: true, profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, want: "unconfined"},
		{name: "enabled localhost", enabled: true, profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "localhost/deny-write"}, want: "deny-write"},
		{name: "enabled deprecated localhost", enabled: true, deprecated: "localhost/deny-write", want: "deny-write"},
		{name: "enabled deprecated runtime default", enabled: true, deprecated: "runtime/default", want: "cri-rt-default"},
		{name: "enabled localhost not loaded", enabled: true, profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "localhost/not-loaded"}, wantErr: "apparmor.localhost_ref"},
		{name: "enabled deprecated not loaded", enabled: true, deprecated: "localhost/not-loaded", wantErr: "apparmor.localhost_ref"},
		{name: "enabled empty localhost", enabled: true, profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost}, wantErr: "apparmor.localhost_ref"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.AppArmorEnabled = tc.enabled
			o.AppArmorDefaultProfile = "cri-rt-default"
			o.Config.Linux.SecurityContext.Apparmor = tc.profile
			o.Config.Linux.SecurityContext.ApparmorProfile = tc.deprecated
			s, err := ContainerSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Process.ApparmorProfile != tc.want {
				t.Fatalf("apparmor %q, want %q", s.Process.ApparmorProfile, tc.want)
			}
		})
	}
}
