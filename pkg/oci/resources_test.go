package oci

import (
	"fmt"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/oom"
)

func TestCgroupsPath(t *testing.T) {
	for _, tc := range []struct {
		driver, parent, want string
		wantErr              bool
	}{
		{driver: "cgroupfs", parent: "/kubepods/burstable/pod1", want: "/kubepods/burstable/pod1/c1"},
		{driver: "", parent: "", want: "/cri-rt/c1"},
		{driver: "cgroupfs", parent: "kubepods", want: "/kubepods/c1"},
		{driver: "systemd", parent: "kubepods-burstable-pod1.slice", want: "kubepods-burstable-pod1.slice:cri-rt:c1"},
		{driver: "systemd", parent: "/test.slice", want: "test.slice:cri-rt:c1"},
		{driver: "systemd", parent: "", want: "system.slice:cri-rt:c1"},
		{driver: "systemd", parent: "/kubepods/burstable", wantErr: true},
		{driver: "systemd", parent: ".slice", wantErr: true},
		{driver: "other", wantErr: true},
	} {
		t.Run(tc.driver+"/"+tc.parent, func(t *testing.T) {
			got, err := CgroupsPath(tc.driver, tc.parent, "c1")
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCgroupsPathInSpecs(t *testing.T) {
	o := containerOpts(t)
	o.CgroupDriver = CgroupDriverSystemd
	o.SandboxConfig.Linux.CgroupParent = "kubepods-pod1.slice"
	if got := mustContainer(t, o).Linux.CgroupsPath; got != "kubepods-pod1.slice:cri-rt:ctr1" {
		t.Errorf("container cgroups path %q", got)
	}
	o.CgroupParent = "other.slice"
	if got := mustContainer(t, o).Linux.CgroupsPath; got != "other.slice:cri-rt:ctr1" {
		t.Errorf("explicit parent: cgroups path %q", got)
	}
	o.SandboxConfig.Linux.CgroupParent, o.CgroupParent = "/kubepods/pod1", ""
	_, err := ContainerSpec(o)
	wantInvalid(t, err, "cgroup_parent")

	so := sandboxOpts(t)
	so.Config.Linux.CgroupParent = "/kubepods/pod1"
	if got := mustSandbox(t, so).Linux.CgroupsPath; got != "/kubepods/pod1/sb1" {
		t.Errorf("sandbox cgroups path %q", got)
	}
}

func TestResources(t *testing.T) {
	o := containerOpts(t)
	o.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{
		CpuPeriod:          100000,
		CpuQuota:           50000,
		CpuShares:          512,
		CpusetCpus:         "0-1",
		CpusetMems:         "0",
		MemoryLimitInBytes: 64 << 20,
		HugepageLimits:     []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}, {PageSize: "1GB", Limit: 1 << 30}},
		Unified:            map[string]string{"memory.high": "50000000"},
		OomScoreAdj:        500,
	}
	s := mustContainer(t, o)
	r := s.Linux.Resources
	if *r.CPU.Period != 100000 || *r.CPU.Quota != 50000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0-1" || r.CPU.Mems != "0" {
		t.Errorf("cpu %+v", r.CPU)
	}
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 {
		t.Errorf("memory %+v: swap must default to the limit", r.Memory)
	}
	if len(r.HugepageLimits) != 2 || r.HugepageLimits[1].Pagesize != "1GB" || r.HugepageLimits[1].Limit != 1<<30 {
		t.Errorf("hugepages %+v", r.HugepageLimits)
	}
	if r.Unified["memory.high"] != "50000000" {
		t.Errorf("unified %v", r.Unified)
	}
	if *s.Process.OOMScoreAdj != 500 {
		t.Errorf("oom_score_adj %d", *s.Process.OOMScoreAdj)
	}
}

func TestResourcesSwapAndHost(t *testing.T) {
	res := func() *runtimeapi.LinuxContainerResources {
		return &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100, MemorySwapLimitInBytes: 300,
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}}}
	}
	o := containerOpts(t)
	o.Config.Linux.Resources = res()
	if s := mustContainer(t, o); *s.Linux.Resources.Memory.Swap != 300 {
		t.Errorf("explicit swap %d", *s.Linux.Resources.Memory.Swap)
	}

	setHost(t, &swapAvailable, func() bool { return false })
	setHost(t, &hugetlbAvailable, func() bool { return false })
	var warnings []string
	o.Warnf = func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }
	s := mustContainer(t, o)
	if s.Linux.Resources.Memory.Swap != nil || len(s.Linux.Resources.HugepageLimits) != 0 {
		t.Errorf("swap %v hugepages %v set without host support", s.Linux.Resources.Memory.Swap, s.Linux.Resources.HugepageLimits)
	}
	if len(warnings) != 2 {
		t.Errorf("warnings %q, want swap and hugetlb", warnings)
	}
}

func TestResourcesInvalid(t *testing.T) {
	for field, r := range map[string]*runtimeapi.LinuxContainerResources{
		"cpu_shares":                 {CpuShares: -1},
		"cpu_period":                 {CpuPeriod: -1},
		"cpu_quota":                  {CpuQuota: -2},
		"memory_limit_in_bytes":      {MemoryLimitInBytes: -1},
		"memory_swap_limit_in_bytes": {MemorySwapLimitInBytes: -2},
		"oom_score_adj":              {OomScoreAdj: 1001},
		"hugepage_limits[0]":         {HugepageLimits: []*runtimeapi.HugepageLimit{{Limit: 1}}},
	} {
		t.Run(field, func(t *testing.T) {
			o := containerOpts(t)
			o.Config.Linux.Resources = r
			_, err := ContainerSpec(o)
			wantInvalid(t, err, "linux.resources."+field)
		})
	}
}

func TestOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requested int64
		noRes     bool
		r         oom.Restriction
		want      int
		warn      bool
	}{
		{name: "as asked", requested: -997, want: -997},
		{name: "no resources is 0, not inherited", noRes: true, want: 0},
		{name: "clamped", requested: -997, r: oom.Restriction{Restricted: true, Floor: -500}, want: -500, warn: true},
		{name: "above floor", requested: 1000, r: oom.Restriction{Restricted: true, Floor: -500}, want: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.OOM = tc.r
			o.Config.Linux.Resources.OomScoreAdj = tc.requested
			if tc.noRes {
				o.Config.Linux.Resources = nil
			}
			var warned []string
			o.Warnf = func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }
			s := mustContainer(t, o)
			if *s.Process.OOMScoreAdj != tc.want {
				t.Fatalf("oom_score_adj %d, want %d", *s.Process.OOMScoreAdj, tc.want)
			}
			if (len(warned) > 0) != tc.warn {
				t.Fatalf("warnings %q, want warn=%v", warned, tc.warn)
			}
		})
	}
}

func TestSandboxOOMScoreAdj(t *testing.T) {
	o := sandboxOpts(t)
	if got := *mustSandbox(t, o).Process.OOMScoreAdj; got != -998 {
		t.Fatalf("sandbox oom_score_adj %d, want -998", got)
	}
	o.OOM = oom.Restriction{Restricted: true, Floor: -999}
	if got := *mustSandbox(t, o).Process.OOMScoreAdj; got != -998 {
		t.Fatalf("floor below: %d", got)
	}
	var warned string
	o.OOM = oom.Restriction{Restricted: true, Floor: 0}
	o.Warnf = func(f string, a ...any) { warned = fmt.Sprintf(f, a...) }
	if got := *mustSandbox(t, o).Process.OOMScoreAdj; got != 0 {
		t.Fatalf("clamped sandbox %d, want 0", got)
	}
	if !strings.Contains(warned, "-998") {
		t.Fatalf("warning %q", warned)
	}
}
