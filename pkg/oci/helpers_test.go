package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/capability"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestMain pins the host facts so that results do not depend on the
// machine running the tests; tests that need another value set it with
// setHost.
func TestMain(m *testing.M) {
	realProbes = []func() bool{cgroupV2, hugetlbAvailable, swapAvailable}
	realCapabilities = hostCapabilities
	hostCapabilities = func() ([]string, error) { return capNames(capability.ListKnown()), nil }
	cgroupV2 = func() bool { return true }
	hugetlbAvailable = func() bool { return true }
	swapAvailable = func() bool { return true }
	osHostname = func() (string, error) { return "node-1", nil }
	apparmorProfileLoaded = func(name string) (bool, error) { return name != "not-loaded", nil }
	os.Exit(m.Run())
}

// The real host probes, kept for a smoke test.
var (
	realProbes       []func() bool
	realCapabilities func() ([]string, error)
)

// setHost overrides a host fact for one test.
func setHost[T any](t *testing.T, p *T, v T) {
	t.Helper()
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// fakeRootfs makes a rootfs with the given files (path -> content).
func fakeRootfs(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
default-user:x:1000:1000::/home/default-user:/bin/sh
other:x:1001:1002::/home/other:/bin/sh
`
	testGroup = `root:x:0:
daemon:x:1:
users:x:100:default-user,other
default-user:x:1000:
group-defined-in-image:x:50000:default-user
staff:x:1002:
nogroup:x:65534:
`
)

func testImage() *ocispec.ImageConfig {
	return &ocispec.ImageConfig{
		Entrypoint: []string{"/entry"},
		Cmd:        []string{"serve"},
		Env:        []string{"PATH=/image/bin", "IMAGE_ONLY=1", "SHARED=image"},
		WorkingDir: "/srv",
	}
}

func sandboxConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "pod", Uid: "uid-1", Namespace: "ns", Attempt: 0},
		Hostname:     "pod-host",
		LogDirectory: "/var/log/pods/ns_pod_uid-1",
		Annotations:  map[string]string{"pod-annotation": "x"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

func containerConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: "app"},
		Image:       &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "docker.io/library/app:1"},
		Annotations: map[string]string{"ctr-annotation": "y"},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       &runtimeapi.LinuxContainerResources{},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{},
		},
	}
}

// containerOpts returns options that build; tests change what they test.
func containerOpts(t *testing.T) ContainerOptions {
	t.Helper()
	return ContainerOptions{
		ID:             "ctr1",
		SandboxID:      "sb1",
		Config:         containerConfig(),
		SandboxConfig:  sandboxConfig(),
		Image:          testImage(),
		RootfsPath:     fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup}),
		SandboxPid:     4242,
		HostnamePath:   "/run/cri-rt/sb1/hostname",
		ResolvConfPath: "/run/cri-rt/sb1/resolv.conf",
		HostsPath:      "/run/cri-rt/sb1/hosts",
		ShmPath:        "/run/cri-rt/sb1/shm",
	}
}

func sandboxOpts(t *testing.T) SandboxOptions {
	t.Helper()
	return SandboxOptions{
		ID:             "sb1",
		Config:         sandboxConfig(),
		Image:          &ocispec.ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		ImageName:      "registry.k8s.io/pause:3.10",
		RootfsPath:     fakeRootfs(t, map[string]string{"pause": ""}),
		NetNSPath:      "/run/netns/cni-1",
		HostnamePath:   "/run/cri-rt/sb1/hostname",
		ResolvConfPath: "/run/cri-rt/sb1/resolv.conf",
		HostsPath:      "/run/cri-rt/sb1/hosts",
		ShmPath:        "/run/cri-rt/sb1/shm",
	}
}

func mustContainer(t *testing.T, o ContainerOptions) *specs.Spec {
	t.Helper()
	s, err := ContainerSpec(o)
	if err != nil {
		t.Fatalf("ContainerSpec: %v", err)
	}
	if err := Validate(s); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return s
}

func mustSandbox(t *testing.T, o SandboxOptions) *specs.Spec {
	t.Helper()
	s, err := SandboxSpec(o)
	if err != nil {
		t.Fatalf("SandboxSpec: %v", err)
	}
	if err := Validate(s); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return s
}

// wantInvalid checks err is an InvalidArgument naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an InvalidArgument error naming %q, got nil", field)
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("want InvalidArgument, got %v", err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("error %q does not name %q", err, field)
	}
}

func findMount(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func findNS(s *specs.Spec, typ specs.LinuxNamespaceType) *specs.LinuxNamespace {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == typ {
			return &s.Linux.Namespaces[i]
		}
	}
	return nil
}

func int64Value(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }

func testUserNS() *UserNamespace {
	return &UserNamespace{
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
	}
}
