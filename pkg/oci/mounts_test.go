package oci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDefaultAndPodMounts(t *testing.T) {
	s := mustContainer(t, containerOpts(t))
	want := map[string]struct{ typ, src string }{
		"/proc":          {"proc", "proc"},
		"/dev":           {"tmpfs", "tmpfs"},
		"/dev/pts":       {"devpts", "devpts"},
		"/dev/mqueue":    {"mqueue", "mqueue"},
		"/sys":           {"sysfs", "sysfs"},
		"/sys/fs/cgroup": {"cgroup", "cgroup"},
		etcHostname:      {"bind", "/run/cri-rt/sb1/hostname"},
		etcHosts:         {"bind", "/run/cri-rt/sb1/hosts"},
		resolvConf:       {"bind", "/run/cri-rt/sb1/resolv.conf"},
		devShm:           {"bind", "/run/cri-rt/sb1/shm"},
	}
	if len(s.Mounts) != len(want) {
		t.Errorf("%d mounts, want %d: %+v", len(s.Mounts), len(want), s.Mounts)
	}
	for dst, w := range want {
		m := findMount(s, dst)
		if m == nil || m.Type != w.typ || m.Source != w.src {
			t.Errorf("%s: %+v, want %s from %s", dst, m, w.typ, w.src)
		}
	}
	if findMount(s, "/run") != nil {
		t.Error("containerd's /run tmpfs should not be there")
	}
}

func TestShmMount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shm     string
		hostIPC bool
		want    specs.Mount
	}{
		{name: "pod shm", shm: "/run/shm", want: specs.Mount{Type: "bind", Source: "/run/shm"}},
		{name: "host ipc", hostIPC: true, want: specs.Mount{Type: "bind", Source: "/dev/shm"}},
		{name: "no shm given", want: specs.Mount{Type: "tmpfs", Source: "shm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.ShmPath = tc.shm
			if tc.hostIPC {
				o.SandboxConfig.Linux.SecurityContext.NamespaceOptions.Ipc = runtimeapi.NamespaceMode_NODE
			}
			m := findMount(mustContainer(t, o), devShm)
			if m == nil || m.Type != tc.want.Type || m.Source != tc.want.Source {
				t.Fatalf("/dev/shm: %+v, want %+v", m, tc.want)
			}
		})
	}
}

func TestRequestMounts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mount    *runtimeapi.Mount
		features Features
		wantOpts []string
		wantProp string
		wantErr  string
	}{
		{name: "default is private rw", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c"}, wantOpts: []string{"rbind", "rprivate", "rw"}},
		{name: "readonly", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Readonly: true}, wantOpts: []string{"rbind", "rprivate", "ro"}},
		{name: "host to container", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			wantOpts: []string{"rbind", "rslave", "rw"}, wantProp: "rslave"},
		{name: "bidirectional", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			wantOpts: []string{"rbind", "rshared", "rw"}, wantProp: "rshared"},
		{name: "recursive read-only", features: Features{RecursiveReadOnly: true},
			mount:    &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Readonly: true, RecursiveReadOnly: true, SelinuxRelabel: true},
			wantOpts: []string{"rbind", "rprivate", "rro"}},
		{name: "rro without readonly", features: Features{RecursiveReadOnly: true},
			mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", RecursiveReadOnly: true}, wantErr: "mounts[0].recursive_read_only"},
		{name: "rro unsupported",
			mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Readonly: true, RecursiveReadOnly: true}, wantErr: "mounts[0].recursive_read_only"},
		{name: "rro with host to container", features: Features{RecursiveReadOnly: true},
			mount:   &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			wantErr: "mounts[0].propagation"},
		{name: "rro with bidirectional", features: Features{RecursiveReadOnly: true},
			mount:   &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			wantErr: "mounts[0].propagation"},
		{name: "unknown propagation", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", Propagation: 9}, wantErr: "mounts[0].propagation"},
		{name: "mount options", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", MountOptions: []string{"noexec", "nosuid"}},
			wantOpts: []string{"rbind", "rprivate", "rw", "noexec", "nosuid"}},
		{name: "forbidden mount option", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/c", MountOptions: []string{"noexec", "suid"}}, wantErr: "mounts[0].mount_options[1]"},
		{name: "relative host path", mount: &runtimeapi.Mount{HostPath: "h", ContainerPath: "/c"}, wantErr: "mounts[0].host_path"},
		{name: "empty host path", mount: &runtimeapi.Mount{ContainerPath: "/c"}, wantErr: "mounts[0].host_path"},
		{name: "empty container path", mount: &runtimeapi.Mount{HostPath: "/h"}, wantErr: "mounts[0].container_path"},
		{name: "over root", mount: &runtimeapi.Mount{HostPath: "/h", ContainerPath: "/"}, wantErr: "mounts[0].container_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.Features = tc.features
			o.Config.Mounts = []*runtimeapi.Mount{tc.mount}
			s, err := ContainerSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := findMount(s, "/c")
			if m == nil || m.Type != "bind" || m.Source != "/h" || !slices.Equal(m.Options, tc.wantOpts) {
				t.Fatalf("mount %+v, want options %v", m, tc.wantOpts)
			}
			if s.Linux.RootfsPropagation != tc.wantProp {
				t.Fatalf("rootfs propagation %q, want %q", s.Linux.RootfsPropagation, tc.wantProp)
			}
		})
	}
}

// rshared wins over rslave whatever the order of the mounts.
func TestRootfsPropagationCombined(t *testing.T) {
	for _, order := range [][]runtimeapi.MountPropagation{
		{runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
	} {
		o := containerOpts(t)
		o.Config.Mounts = []*runtimeapi.Mount{
			{HostPath: "/a", ContainerPath: "/a", Propagation: order[0]},
			{HostPath: "/b", ContainerPath: "/b", Propagation: order[1]},
		}
		if p := mustContainer(t, o).Linux.RootfsPropagation; p != "rshared" {
			t.Errorf("order %v: rootfs propagation %q, want rshared", order, p)
		}
	}
}

func TestMountOverridesAndOrder(t *testing.T) {
	o := containerOpts(t)
	o.Config.Mounts = []*runtimeapi.Mount{
		{HostPath: "/deep", ContainerPath: "/data/a/b"},
		{HostPath: "/my/hosts", ContainerPath: "/etc/hosts/"},
		{HostPath: "/data", ContainerPath: "/data"},
		{HostPath: "/my/shm", ContainerPath: "/dev/shm"},
		{HostPath: "/my/proc", ContainerPath: "/proc"},
		{HostPath: "/rel", ContainerPath: "relative/dir"},
	}
	s := mustContainer(t, o)
	if m := findMount(s, etcHosts); m == nil || m.Source != "/my/hosts" {
		t.Errorf("/etc/hosts: %+v, want the request's", m)
	}
	if m := findMount(s, devShm); m == nil || m.Source != "/my/shm" {
		t.Errorf("/dev/shm: %+v, want the request's", m)
	}
	if m := findMount(s, "/proc"); m == nil || m.Type != "bind" {
		t.Errorf("/proc: %+v, want the request's bind", m)
	}
	if m := findMount(s, "/relative/dir"); m == nil || m.Source != "/rel" {
		t.Errorf("relative destination: %+v", m)
	}
	idx := func(dst string) int {
		return slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dst })
	}
	if !(idx("/data") < idx("/data/a/b")) {
		t.Errorf("/data must come before /data/a/b: %v", dests(s))
	}
}

func TestRequestDevMountDropsDefaultsUnderDev(t *testing.T) {
	o := containerOpts(t)
	o.ShmPath = ""
	o.Config.Mounts = []*runtimeapi.Mount{{HostPath: "/dev", ContainerPath: "/dev"}}
	s := mustContainer(t, o)
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Destination, "/dev/") {
			t.Errorf("default %s kept under the request's /dev", m.Destination)
		}
	}
}

func TestDuplicateMount(t *testing.T) {
	o := containerOpts(t)
	o.Config.Mounts = []*runtimeapi.Mount{{HostPath: "/a", ContainerPath: "/x"}, {HostPath: "/b", ContainerPath: "/x/"}}
	_, err := ContainerSpec(o)
	wantInvalid(t, err, "mounts[1].container_path")
}

func TestImageVolumes(t *testing.T) {
	img := &runtimeapi.ImageSpec{Image: "sha256:vol"}
	t.Run("request mount", func(t *testing.T) {
		o := containerOpts(t)
		o.ImageVolumes = map[string]string{"/vol/": "/var/lib/cri-rt/imagevol/1", "/extra": "/var/lib/cri-rt/imagevol/2"}
		o.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", Image: img, Readonly: true}}
		s := mustContainer(t, o)
		for dst, src := range map[string]string{"/vol": "/var/lib/cri-rt/imagevol/1", "/extra": "/var/lib/cri-rt/imagevol/2"} {
			m := findMount(s, dst)
			if m == nil || m.Source != src {
				t.Fatalf("%s: %+v", dst, m)
			}
			for _, opt := range []string{"rbind", "ro", "nosuid", "nodev", "rprivate"} {
				if !slices.Contains(m.Options, opt) {
					t.Errorf("%s lacks %s: %v", dst, opt, m.Options)
				}
			}
			if slices.Contains(m.Options, "noexec") {
				t.Errorf("%s is noexec: binaries of image volumes must run", dst)
			}
		}
	})
	t.Run("writable rejected", func(t *testing.T) {
		o := containerOpts(t)
		o.ImageVolumes = map[string]string{"/vol": "/x"}
		o.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", Image: img}}
		_, err := ContainerSpec(o)
		wantInvalid(t, err, "mounts[0].readonly")
	})
	t.Run("not prepared", func(t *testing.T) {
		o := containerOpts(t)
		o.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", Image: img, Readonly: true}}
		_, err := ContainerSpec(o)
		if !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("got %v, want FailedPrecondition", err)
		}
	})
	t.Run("id-mapped with the pod's mappings", func(t *testing.T) {
		o := containerOpts(t)
		o.UserNS = testUserNS()
		o.Features.IDMapMounts = true
		o.ImageVolumes = map[string]string{"/vol": "/x"}
		o.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", Image: img, Readonly: true}}
		m := findMount(mustContainer(t, o), "/vol")
		if !slices.Equal(m.UIDMappings, o.UserNS.UIDMappings) || !slices.Equal(m.GIDMappings, o.UserNS.GIDMappings) {
			t.Fatalf("mappings %+v %+v", m.UIDMappings, m.GIDMappings)
		}
	})
}

func TestIDMappedMounts(t *testing.T) {
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	t.Run("kubelet volumes", func(t *testing.T) {
		o := containerOpts(t)
		o.UserNS = testUserNS()
		o.Features.IDMapMounts = true
		o.Config.Mounts = []*runtimeapi.Mount{
			{HostPath: "/vol", ContainerPath: "/vol", UidMappings: mapping, GidMappings: mapping},
			{HostPath: "/plain", ContainerPath: "/plain"},
		}
		s := mustContainer(t, o)
		want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		if m := findMount(s, "/vol"); !slices.Equal(m.UIDMappings, want) || !slices.Equal(m.GIDMappings, want) {
			t.Errorf("/vol mappings %+v %+v", m.UIDMappings, m.GIDMappings)
		}
		if m := findMount(s, "/plain"); m.UIDMappings != nil {
			t.Errorf("/plain got mappings kubelet did not ask for: %+v", m.UIDMappings)
		}
		// cri-rt's own files get the pod's mappings, /dev/shm does not.
		for _, dst := range []string{etcHostname, etcHosts, resolvConf} {
			if m := findMount(s, dst); !slices.Equal(m.UIDMappings, o.UserNS.UIDMappings) || !slices.Equal(m.GIDMappings, o.UserNS.GIDMappings) {
				t.Errorf("%s mappings %+v", dst, m.UIDMappings)
			}
		}
		if m := findMount(s, devShm); m.UIDMappings != nil {
			t.Errorf("/dev/shm is id-mapped")
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		o := containerOpts(t)
		o.UserNS = testUserNS()
		o.Config.Mounts = []*runtimeapi.Mount{{HostPath: "/vol", ContainerPath: "/vol", UidMappings: mapping, GidMappings: mapping}}
		_, err := ContainerSpec(o)
		wantInvalid(t, err, "mounts[0].uidMappings")
	})
	t.Run("uid only", func(t *testing.T) {
		o := containerOpts(t)
		o.Features.IDMapMounts = true
		o.Config.Mounts = []*runtimeapi.Mount{{HostPath: "/vol", ContainerPath: "/vol", UidMappings: mapping}}
		_, err := ContainerSpec(o)
		wantInvalid(t, err, "mounts[0].uidMappings")
	})
	t.Run("no idmap support keeps pod files unmapped", func(t *testing.T) {
		o := containerOpts(t)
		o.UserNS = testUserNS()
		if m := findMount(mustContainer(t, o), etcHosts); m.UIDMappings != nil {
			t.Error("mapped without runtime support")
		}
	})
}

// With a user namespace but the host's network namespace, sysfs cannot be
// mounted; the host's /sys is bound read-only instead.
func TestUserNSHostNetworkSys(t *testing.T) {
	for _, rro := range []bool{false, true} {
		o := containerOpts(t)
		o.UserNS = testUserNS()
		o.Features.RecursiveReadOnly = rro
		o.SandboxConfig.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		m := findMount(mustContainer(t, o), "/sys")
		want := "ro"
		if rro {
			want = "rro"
		}
		if m == nil || m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, want) {
			t.Errorf("rro=%v: /sys %+v", rro, m)
		}
	}
}

func TestHostPathsToCreate(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.Mkdir(exists, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cfg := &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{
		{HostPath: exists, ContainerPath: "/a"},
		{HostPath: missing + "/", ContainerPath: "/b"},
		{HostPath: missing, ContainerPath: "/c"},
		{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: "x"}},
		{HostPath: "relative", ContainerPath: "/d"},
	}}
	if got := HostPathsToCreate(cfg); !slices.Equal(got, []string{missing}) {
		t.Fatalf("got %v, want [%s]", got, missing)
	}
}

func dests(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}
