package nri

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "/rootfs"},
		Process: &specs.Process{Args: []string{"sleep", "1"}, Cwd: "/", Env: []string{"PATH=/bin", "KEEP=1"}},
		Linux:   &specs.Linux{CgroupsPath: "/kubepods/x"},
		Annotations: map[string]string{
			"from-request": "v",
		},
	}
}

func TestAdjustAppliesToTheSpecInPlace(t *testing.T) {
	spec := testSpec()
	a := &api.ContainerAdjustment{}
	a.AddEnv("ADDED", "yes")
	a.AddAnnotation("nri/added", "1")
	a.SetLinuxCPUShares(256)
	a.SetLinuxMemoryLimit(64 << 20)
	if err := adjust(spec, a); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Env, "ADDED=yes") || !slices.Contains(spec.Process.Env, "KEEP=1") {
		t.Errorf("env: %v", spec.Process.Env)
	}
	if spec.Annotations["nri/added"] != "1" || spec.Annotations["from-request"] != "v" {
		t.Errorf("annotations: %v", spec.Annotations)
	}
	r := spec.Linux.Resources
	if r == nil || r.CPU == nil || *r.CPU.Shares != 256 || r.Memory == nil || *r.Memory.Limit != 64<<20 {
		t.Errorf("resources: %+v", r)
	}
}

func TestAdjustRefusesWhatCannotBeHonoured(t *testing.T) {
	a := &api.ContainerAdjustment{}
	a.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
	if err := adjust(testSpec(), a); err == nil || !strings.Contains(err.Error(), "CDI") {
		t.Errorf("CDI devices: %v", err)
	}
	// An adjustment that leaves an invalid spec fails the creation rather
	// than the runtime's create.
	a = &api.ContainerAdjustment{}
	a.AddMount(&api.Mount{Destination: "relative/dir", Source: "/tmp", Type: "bind", Options: []string{"rbind"}})
	if err := adjust(testSpec(), a); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("a mount on a relative path: %v", err)
	}
}

func TestMergeResourcesKeepsWhatTheUpdateLeavesOut(t *testing.T) {
	shares, quota, limit := uint64(100), int64(5000), int64(1<<20)
	cur := specs.LinuxResources{
		CPU:            &specs.LinuxCPU{Shares: &shares, Quota: &quota, Cpus: "0-1"},
		Memory:         &specs.LinuxMemory{Limit: &limit},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}},
	}
	upd := (&api.LinuxResources{
		Cpu:            &api.LinuxCPU{Shares: api.UInt64(512)},
		HugepageLimits: []*api.HugepageLimit{{PageSize: "2MB", Limit: 2}, {PageSize: "1GB", Limit: 3}},
		Unified:        map[string]string{"memory.high": "max"},
	}).ToOCI()
	mergeResources(&cur, upd)
	if *cur.CPU.Shares != 512 || *cur.CPU.Quota != 5000 || cur.CPU.Cpus != "0-1" || *cur.Memory.Limit != 1<<20 {
		t.Errorf("merged: cpu %+v memory %+v", cur.CPU, cur.Memory)
	}
	if len(cur.HugepageLimits) != 2 || cur.HugepageLimits[0].Limit != 2 || cur.Unified["memory.high"] != "max" {
		t.Errorf("merged: hugepages %+v unified %v", cur.HugepageLimits, cur.Unified)
	}
}

func TestNamespacesOfAProcess(t *testing.T) {
	got := namespaces([]specs.LinuxNamespace{
		{Type: specs.NetworkNamespace, Path: "/run/netns/x"},
		{Type: specs.MountNamespace},
		{Type: specs.PIDNamespace},
	}, 42)
	want := []string{"network=/run/netns/x", "mount=/proc/42/ns/mnt", "pid=/proc/42/ns/pid"}
	var have []string
	for _, n := range got {
		have = append(have, n.Type+"="+n.Path)
	}
	if !slices.Equal(have, want) {
		t.Errorf("namespaces: %v, want %v", have, want)
	}
}

func TestSocketInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nri.sock")
	if socketInUse(path) {
		t.Fatal("a missing socket is in use")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if !socketInUse(path) {
		t.Error("a served socket is not in use")
	}
	// A socket file left by a dead process may be taken over.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if socketInUse(path) {
		t.Error("a stale socket file is in use")
	}
}
