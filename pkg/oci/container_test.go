package oci

import (
	"encoding/json"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerSpec(t *testing.T) {
	o := containerOpts(t)
	o.Config.Args = []string{"--flag"}
	o.Config.Envs = []*runtimeapi.KeyValue{{Key: "SHARED", Value: []byte("request")}}
	o.Config.Annotations[AnnotationSandboxID] = "spoofed"
	o.Image.User = "default-user"
	s := mustContainer(t, o)

	if !slices.Equal(s.Process.Args, []string{"/entry", "--flag"}) {
		t.Errorf("args %q", s.Process.Args)
	}
	if !slices.Equal(s.Process.Env, []string{"PATH=/image/bin", "HOSTNAME=pod-host", "IMAGE_ONLY=1", "SHARED=request"}) {
		t.Errorf("env %q", s.Process.Env)
	}
	if s.Process.Cwd != "/srv" {
		t.Errorf("cwd %q", s.Process.Cwd)
	}
	if s.Process.User.UID != 1000 || s.Process.User.GID != 1000 || !slices.Equal(s.Process.User.AdditionalGids, []uint32{100, 1000, 50000}) {
		t.Errorf("user %+v", s.Process.User)
	}
	if s.Root.Path != o.RootfsPath || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
	if s.Linux.CgroupsPath != "/cri-rt/ctr1" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	if s.Process.Rlimits != nil {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
	want := map[string]string{
		"ctr-annotation":           "y",
		AnnotationContainerType:    ContainerTypeContainer,
		AnnotationSandboxID:        "sb1",
		AnnotationSandboxNamespace: "ns",
		AnnotationSandboxUID:       "uid-1",
		AnnotationSandboxName:      "pod",
		AnnotationContainerName:    "app",
		AnnotationImageName:        "docker.io/library/app:1",
	}
	for k, v := range want {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	if len(s.Annotations) != len(want) {
		t.Errorf("annotations %v (pod annotations must not leak into containers)", s.Annotations)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

func TestContainerImageNameAnnotation(t *testing.T) {
	o := containerOpts(t)
	o.ImageName = "explicit:1"
	if got := mustContainer(t, o).Annotations[AnnotationImageName]; got != "explicit:1" {
		t.Errorf("got %q", got)
	}
	o.ImageName = ""
	o.Config.Image = &runtimeapi.ImageSpec{Image: "busybox"}
	if got := mustContainer(t, o).Annotations[AnnotationImageName]; got != "busybox" {
		t.Errorf("got %q", got)
	}
}

// Spec building must not modify the request: the server keeps it for
// ContainerStatus.
func TestContainerSpecDoesNotModifyRequest(t *testing.T) {
	o := containerOpts(t)
	o.Config.Mounts = []*runtimeapi.Mount{{HostPath: "/a", ContainerPath: "/a"}}
	o.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/n"}}
	o.Config.Tty = true
	before, _ := json.Marshal(o.Config)
	imgBefore, _ := json.Marshal(o.Image)
	mustContainer(t, o)
	after, _ := json.Marshal(o.Config)
	imgAfter, _ := json.Marshal(o.Image)
	if string(before) != string(after) || string(imgBefore) != string(imgAfter) {
		t.Fatal("ContainerSpec modified its input")
	}
}

func TestContainerInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*ContainerOptions)
		field  string
	}{
		{"no config", func(o *ContainerOptions) { o.Config = nil }, "config"},
		{"no sandbox config", func(o *ContainerOptions) { o.SandboxConfig = nil }, "sandbox_config"},
		{"no id", func(o *ContainerOptions) { o.ID = "" }, "ID"},
		{"relative rootfs", func(o *ContainerOptions) { o.RootfsPath = "rootfs" }, "RootfsPath"},
		{"nothing to run", func(o *ContainerOptions) { o.Image.Entrypoint, o.Image.Cmd = nil, nil }, "command"},
		{"unknown user", func(o *ContainerOptions) { o.Config.Linux.SecurityContext.RunAsUsername = "ghost" }, "run_as_username"},
		{"group without user", func(o *ContainerOptions) { o.Config.Linux.SecurityContext.RunAsGroup = int64Value(5) }, "run_as_group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			tc.change(&o)
			_, err := ContainerSpec(o)
			wantInvalid(t, err, tc.field)
		})
	}
}

func TestValidate(t *testing.T) {
	good := func(t *testing.T) *specs.Spec { return mustContainer(t, containerOpts(t)) }
	for _, tc := range []struct {
		name   string
		change func(*specs.Spec)
	}{
		{"relative root", func(s *specs.Spec) { s.Root.Path = "rootfs" }},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "srv" }},
		{"relative mount", func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }},
		{"duplicate mount", func(s *specs.Spec) { s.Mounts = append(s.Mounts, s.Mounts[0]) }},
		{"relative bind source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "x"})
		}},
		{"duplicate namespace", func(s *specs.Spec) { s.Linux.Namespaces = append(s.Linux.Namespaces, s.Linux.Namespaces[0]) }},
		{"hostname without uts", func(s *specs.Spec) {
			s.Hostname = "h"
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UTSNamespace })
		}},
		{"userns without mappings", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}},
		{"mappings without userns", func(s *specs.Spec) { s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}} }},
		{"duplicate device", func(s *specs.Spec) {
			d := specs.LinuxDevice{Path: "/dev/x", Type: "c"}
			s.Linux.Devices = append(s.Linux.Devices, d, d)
		}},
		{"no cgroups path", func(s *specs.Spec) { s.Linux.CgroupsPath = "" }},
		{"relative masked path", func(s *specs.Spec) { s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good(t)
			tc.change(s)
			if err := Validate(s); err == nil {
				t.Fatal("Validate accepted a broken spec")
			}
		})
	}
}

// crictl sends far less than kubelet: nothing optional may be required.
func TestMinimalRequests(t *testing.T) {
	so := SandboxOptions{
		ID:         "sb",
		Config:     &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p"}},
		Image:      &ocispec.ImageConfig{Cmd: []string{"/pause"}},
		RootfsPath: t.TempDir(),
	}
	s := mustSandbox(t, so)
	checkNamespaces(t, s, nsWant{"mount": "", "network": "", "uts": "", "ipc": "", "pid": ""})
	if s.Process.User.UID != 0 || s.Linux.Seccomp != nil {
		t.Errorf("user %+v seccomp %v", s.Process.User, s.Linux.Seccomp != nil)
	}

	co := ContainerOptions{
		ID:            "c",
		SandboxID:     "sb",
		Config:        &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Command: []string{"/bin/sh"}},
		SandboxConfig: so.Config,
		RootfsPath:    t.TempDir(),
		SandboxPid:    10,
	}
	c := mustContainer(t, co)
	checkNamespaces(t, c, nsWant{"mount": "", "network": "/proc/10/ns/net", "uts": "/proc/10/ns/uts", "ipc": "/proc/10/ns/ipc", "pid": "/proc/10/ns/pid", "cgroup": ""})
	if !slices.Equal(c.Process.Capabilities.Bounding, DefaultCapabilities) || *c.Process.OOMScoreAdj != 0 {
		t.Errorf("caps %v oom %d", c.Process.Capabilities.Bounding, *c.Process.OOMScoreAdj)
	}
	if m := findMount(c, devShm); m == nil || m.Type != "tmpfs" {
		t.Errorf("/dev/shm %+v, want a private tmpfs", m)
	}
}
