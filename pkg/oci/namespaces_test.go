package oci

import (
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type nsWant map[specs.LinuxNamespaceType]string // type -> path; absent: not listed

func checkNamespaces(t *testing.T, s *specs.Spec, want nsWant) {
	t.Helper()
	got := nsWant{}
	for _, ns := range s.Linux.Namespaces {
		got[ns.Type] = ns.Path
	}
	if len(got) != len(want) {
		t.Errorf("namespaces %v, want %v", got, want)
	}
	for typ, p := range want {
		if gp, ok := got[typ]; !ok || gp != p {
			t.Errorf("%s namespace: got %q (listed %v), want %q", typ, gp, ok, p)
		}
	}
}

func TestSandboxNamespaces(t *testing.T) {
	const netns = "/run/netns/cni-1"
	for _, tc := range []struct {
		name         string
		ns           *runtimeapi.NamespaceOption
		userns       bool
		want         nsWant
		wantHostname string
		wantErr      string
	}{
		{name: "pod defaults", ns: &runtimeapi.NamespaceOption{},
			want: nsWant{"mount": "", "network": netns, "uts": "", "ipc": "", "pid": ""}, wantHostname: "pod-host"},
		{name: "pid per container", ns: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			want: nsWant{"mount": "", "network": netns, "uts": "", "ipc": "", "pid": ""}, wantHostname: "pod-host"},
		{name: "host network", ns: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			want: nsWant{"mount": "", "ipc": "", "pid": ""}},
		{name: "host ipc and pid", ns: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE},
			want: nsWant{"mount": "", "network": netns, "uts": ""}, wantHostname: "pod-host"},
		{name: "user namespace", ns: &runtimeapi.NamespaceOption{}, userns: true,
			want: nsWant{"mount": "", "network": netns, "uts": "", "ipc": "", "pid": "", "user": ""}, wantHostname: "pod-host"},
		{name: "target pid", ns: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}, wantErr: "namespace_options.pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sandboxOpts(t)
			o.Config.Linux.SecurityContext.NamespaceOptions = tc.ns
			if tc.userns {
				o.UserNS = testUserNS()
			}
			s, err := SandboxSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(s); err != nil {
				t.Fatal(err)
			}
			checkNamespaces(t, s, tc.want)
			if s.Hostname != tc.wantHostname {
				t.Errorf("hostname %q, want %q", s.Hostname, tc.wantHostname)
			}
			if tc.userns && (!slices.Equal(s.Linux.UIDMappings, o.UserNS.UIDMappings) || !slices.Equal(s.Linux.GIDMappings, o.UserNS.GIDMappings)) {
				t.Errorf("mappings %+v %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
			}
		})
	}
}

func TestContainerNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pod, ctr  *runtimeapi.NamespaceOption
		targetPid int
		userns    bool
		want      nsWant
		wantErr   string
	}{
		{name: "pid POD", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
			want: nsWant{"mount": "", "network": "/proc/4242/ns/net", "uts": "/proc/4242/ns/uts", "ipc": "/proc/4242/ns/ipc", "pid": "/proc/4242/ns/pid", "cgroup": ""}},
		{name: "pid CONTAINER", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			want: nsWant{"mount": "", "network": "/proc/4242/ns/net", "uts": "/proc/4242/ns/uts", "ipc": "/proc/4242/ns/ipc", "pid": "", "cgroup": ""}},
		{name: "pid NODE", pod: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE},
			want: nsWant{"mount": "", "network": "/proc/4242/ns/net", "uts": "/proc/4242/ns/uts", "ipc": "/proc/4242/ns/ipc", "cgroup": ""}},
		{name: "pid TARGET", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "other"}, targetPid: 777,
			want: nsWant{"mount": "", "network": "/proc/4242/ns/net", "uts": "/proc/4242/ns/uts", "ipc": "/proc/4242/ns/ipc", "pid": "/proc/777/ns/pid", "cgroup": ""}},
		{name: "pid TARGET without pid", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "other"},
			wantErr: "namespace_options.target_id"},
		{name: "host network and ipc", pod: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE},
			ctr:  &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE},
			want: nsWant{"mount": "", "pid": "/proc/4242/ns/pid", "cgroup": ""}},
		{name: "user namespace", pod: &runtimeapi.NamespaceOption{}, userns: true,
			ctr:  &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
			want: nsWant{"mount": "", "network": "/proc/4242/ns/net", "uts": "/proc/4242/ns/uts", "ipc": "/proc/4242/ns/ipc", "pid": "/proc/4242/ns/pid", "user": "/proc/4242/ns/user", "cgroup": ""}},
		{name: "user namespace mismatch", pod: &runtimeapi.NamespaceOption{},
			ctr:     &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
			wantErr: "userns_options.mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.SandboxConfig.Linux.SecurityContext.NamespaceOptions = tc.pod
			o.Config.Linux.SecurityContext.NamespaceOptions = tc.ctr
			o.TargetPid = tc.targetPid
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
			if err := Validate(s); err != nil {
				t.Fatal(err)
			}
			checkNamespaces(t, s, tc.want)
			if s.Hostname != "" {
				t.Errorf("container sets hostname %q; it shares the pod's UTS namespace", s.Hostname)
			}
			if tc.userns && !slices.Equal(s.Linux.UIDMappings, o.UserNS.UIDMappings) {
				t.Errorf("uid mappings %+v", s.Linux.UIDMappings)
			}
		})
	}
}

func TestContainerNeedsSandboxPid(t *testing.T) {
	o := containerOpts(t)
	o.SandboxPid = 0
	_, err := ContainerSpec(o)
	wantInvalid(t, err, "SandboxPid")
}

func TestUserNamespaceFromCRI(t *testing.T) {
	good := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 100000}}
	for _, tc := range []struct {
		name    string
		opts    *runtimeapi.UserNamespace
		wantNil bool
		wantErr string
	}{
		{name: "none", wantNil: true},
		{name: "node", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}, wantNil: true},
		{name: "pod", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: good, Gids: good}},
		{name: "two mappings", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{good[0], {ContainerId: 0, HostId: 2000, Length: 100000}}, Gids: good}, wantErr: "userns_options.uids"},
		{name: "container id 0 not mapped", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: good, Gids: []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 100000}}}, wantErr: "userns_options.gids"},
		{name: "no mappings", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}, wantErr: "userns_options.uids"},
		{name: "zero length", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{{HostId: 1000}}, Gids: good}, wantErr: "userns_options.uids"},
		{name: "container mode", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, wantErr: "userns_options.mode"},
		{name: "target mode", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}, wantErr: "userns_options.mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := UserNamespaceFromCRI(tc.opts)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (u == nil) != tc.wantNil {
				t.Fatalf("got %+v", u)
			}
			if u != nil && (u.UIDMappings[0] != specs.LinuxIDMapping{ContainerID: 0, HostID: 1000, Size: 100000}) {
				t.Fatalf("mapping %+v", u.UIDMappings)
			}
		})
	}
}

func TestSandboxSysctls(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		ns      *runtimeapi.NamespaceOption
		want    map[string]string
		wantErr string
	}{
		{name: "safe and unsafe", ns: &runtimeapi.NamespaceOption{},
			sysctls: map[string]string{"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "net.ipv4.ip_forward": "1", "kernel.sem": "1 2 3 4", "kernel.msgmax": "8192"},
			want:    map[string]string{"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "net.ipv4.ip_forward": "1", "kernel.sem": "1 2 3 4", "kernel.msgmax": "8192"}},
		{name: "slash form", ns: &runtimeapi.NamespaceOption{},
			sysctls: map[string]string{"net/ipv4/conf/eth0.100/forwarding": "1"},
			want:    map[string]string{"net.ipv4.conf.eth0/100.forwarding": "1"}},
		{name: "net with host network", ns: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"net.ipv4.ip_forward": "1"}, wantErr: `sysctls["net.ipv4.ip_forward"]`},
		{name: "ipc with host network is fine", ns: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}, want: map[string]string{"kernel.shm_rmid_forced": "1"}},
		{name: "shm with host ipc", ns: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}, wantErr: `sysctls["kernel.shm_rmid_forced"]`},
		{name: "mqueue with host ipc", ns: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"fs.mqueue.msg_max": "100"}, wantErr: `sysctls["fs.mqueue.msg_max"]`},
		{name: "sem with host ipc", ns: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"kernel.sem": "1"}, wantErr: `sysctls["kernel.sem"]`},
		{name: "msg with host ipc", ns: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"kernel.msgmnb": "1"}, wantErr: `sysctls["kernel.msgmnb"]`},
		{name: "net with host ipc is fine", ns: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1"}, want: map[string]string{"net.ipv4.ping_group_range": "0 1"}},
		{name: "hostname with host network", ns: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			sysctls: map[string]string{"kernel.domainname": "x"}, wantErr: `sysctls["kernel.domainname"]`},
		{name: "not namespaced", ns: &runtimeapi.NamespaceOption{},
			sysctls: map[string]string{"vm.swappiness": "1"}, wantErr: `sysctls["vm.swappiness"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sandboxOpts(t)
			o.Config.Linux.SecurityContext.NamespaceOptions = tc.ns
			o.Config.Linux.Sysctls = tc.sysctls
			s, err := SandboxSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Linux.Sysctl) != len(tc.want) {
				t.Fatalf("sysctls %v, want %v", s.Linux.Sysctl, tc.want)
			}
			for k, v := range tc.want {
				if s.Linux.Sysctl[k] != v {
					t.Fatalf("sysctls %v, want %v", s.Linux.Sysctl, tc.want)
				}
			}
		})
	}
}
