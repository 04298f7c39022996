package oci

import (
	"encoding/json"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSandboxSpec(t *testing.T) {
	o := sandboxOpts(t)
	o.Image.Env = []string{"PAUSE=1"}
	o.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 256, MemoryLimitInBytes: 1 << 30}
	o.Annotations = map[string]string{"io.cri-rt.extra": "1", AnnotationSandboxName: "overridden-by-caller"}
	o.Config.Annotations[AnnotationSandboxID] = "spoofed"
	s := mustSandbox(t, o)

	if !slices.Equal(s.Process.Args, []string{"/pause"}) || s.Process.Cwd != "/" {
		t.Errorf("process %q in %q", s.Process.Args, s.Process.Cwd)
	}
	if !slices.Equal(s.Process.Env, []string{"PATH=" + defaultPath, "PAUSE=1"}) {
		t.Errorf("env %q", s.Process.Env)
	}
	if s.Process.User.UID != 65535 || s.Process.User.GID != 65535 {
		t.Errorf("user %+v", s.Process.User)
	}
	if !s.Root.Readonly || s.Root.Path != o.RootfsPath {
		t.Errorf("root %+v", s.Root)
	}
	if c := s.Process.Capabilities; len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Ambient)+len(c.Inheritable) != 0 {
		t.Errorf("pause has capabilities %+v", c)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("pause may gain privileges")
	}
	if s.Process.Rlimits != nil {
		t.Errorf("rlimits %+v: the runtime's should be inherited", s.Process.Rlimits)
	}
	for _, dst := range []string{devShm, etcHosts, etcHostname, resolvConf} {
		if findMount(s, dst) != nil {
			t.Errorf("pause mounts %s", dst)
		}
	}
	if findMount(s, "/proc") == nil || findMount(s, "/dev") == nil {
		t.Error("standard mounts missing")
	}
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths) {
		t.Errorf("masked %v", s.Linux.MaskedPaths)
	}
	if *s.Linux.Resources.CPU.Shares != 2 || s.Linux.Resources.Memory != nil && s.Linux.Resources.Memory.Limit != nil {
		t.Errorf("pause resources %+v", s.Linux.Resources)
	}
	if s.Linux.CgroupsPath != "/cri-rt/sb1" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	want := map[string]string{
		"pod-annotation":           "x",
		AnnotationContainerType:    ContainerTypeSandbox,
		AnnotationSandboxID:        "sb1",
		AnnotationSandboxNamespace: "ns",
		AnnotationSandboxUID:       "uid-1",
		AnnotationSandboxName:      "overridden-by-caller",
		AnnotationSandboxLogDir:    "/var/log/pods/ns_pod_uid-1",
		AnnotationSandboxImageName: "registry.k8s.io/pause:3.10",
		AnnotationSandboxCPUPeriod: "100000",
		AnnotationSandboxCPUQuota:  "20000",
		AnnotationSandboxCPUShares: "256",
		AnnotationSandboxMemory:    "1073741824",
		AnnotationHostnamePath:     o.HostnamePath,
		AnnotationHostsPath:        o.HostsPath,
		AnnotationResolvConfPath:   o.ResolvConfPath,
		AnnotationShmPath:          o.ShmPath,
		"io.cri-rt.extra":          "1",
	}
	for k, v := range want {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	if len(s.Annotations) != len(want) {
		t.Errorf("annotations %v", s.Annotations)
	}
	// The spec is what gets written to config.json.
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxUser(t *testing.T) {
	o := sandboxOpts(t)
	o.Config.Linux.SecurityContext.RunAsUser = int64Value(1234)
	o.Config.Linux.SecurityContext.RunAsGroup = int64Value(2345)
	o.Config.Linux.SecurityContext.SupplementalGroups = []int64{7}
	u := mustSandbox(t, o).Process.User
	if u.UID != 1234 || u.GID != 2345 || !slices.Equal(u.AdditionalGids, []uint32{7, 2345}) {
		t.Errorf("user %+v", u)
	}
	o.Config.Linux.SecurityContext.RunAsUser = nil
	_, err := SandboxSpec(o)
	wantInvalid(t, err, "run_as_group")
}

func TestSandboxSecurity(t *testing.T) {
	o := sandboxOpts(t)
	o.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	if mustSandbox(t, o).Linux.Seccomp == nil {
		t.Error("no seccomp for RuntimeDefault")
	}
	o.Config.Linux.SecurityContext.Privileged = true
	s := mustSandbox(t, o)
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil {
		t.Error("privileged sandbox confined")
	}
	if m := findMount(s, "/sys"); m == nil || !slices.Contains(m.Options, "rw") {
		t.Errorf("/sys %+v", m)
	}
	o.AppArmorEnabled = true
	if s := mustSandbox(t, o); s.Process.ApparmorProfile != "unconfined" {
		t.Errorf("apparmor %q", s.Process.ApparmorProfile)
	}
}

func TestSandboxUserNSHostNetwork(t *testing.T) {
	o := sandboxOpts(t)
	o.UserNS = testUserNS()
	o.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
	s := mustSandbox(t, o)
	if m := findMount(s, "/sys"); m == nil || m.Type != "bind" {
		t.Errorf("/sys %+v", m)
	}
	if findNS(s, specs.UserNamespace) == nil || findNS(s, specs.NetworkNamespace) != nil {
		t.Errorf("namespaces %+v", s.Linux.Namespaces)
	}
}

func TestSandboxInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*SandboxOptions)
		field  string
	}{
		{"no config", func(o *SandboxOptions) { o.Config = nil }, "config"},
		{"no id", func(o *SandboxOptions) { o.ID = "" }, "ID"},
		{"relative rootfs", func(o *SandboxOptions) { o.RootfsPath = "rootfs" }, "RootfsPath"},
		{"empty pause image", func(o *SandboxOptions) { o.Image = &ocispec.ImageConfig{} }, "sandbox image"},
		{"nil pause image", func(o *SandboxOptions) { o.Image = nil }, "sandbox image"},
		{"unknown pause user", func(o *SandboxOptions) { o.Image.User = "ghost" }, "image config User"},
		{"userns without mappings", func(o *SandboxOptions) { o.UserNS = &UserNamespace{} }, "userns_options"},
		{"systemd parent not a slice", func(o *SandboxOptions) {
			o.CgroupDriver = CgroupDriverSystemd
			o.Config.Linux.CgroupParent = "/kubepods"
		}, "cgroup_parent"},
		{"seccomp localhost missing", func(o *SandboxOptions) {
			o.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent.json"}
		}, "seccomp.localhost_ref"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sandboxOpts(t)
			tc.change(&o)
			_, err := SandboxSpec(o)
			wantInvalid(t, err, tc.field)
		})
	}
}
