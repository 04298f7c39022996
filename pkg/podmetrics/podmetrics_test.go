package podmetrics

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// writeTree writes files (path relative to root → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeProc writes a procfs with process pid holding threads tasks and the
// given fd targets.
func fakeProc(t *testing.T, proc string, pid string, threads int, fds ...string) {
	t.Helper()
	for i := range threads {
		if err := os.MkdirAll(filepath.Join(proc, pid, "task", pid+"-"+string(rune('a'+i))), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(proc, pid, "fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, target := range fds {
		if err := os.Symlink(target, filepath.Join(proc, pid, "fd", string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
}

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0
  eth0: 1000      10    1    2    0     0          0         0     2000      20    3    4    0     0       0          0
`

const limits = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 4096                 files
`

// v1Tree is a hybrid host: v1 controllers, and a v2 hierarchy holding
// pressure files. The pod cgroup "pod" has a container "pod/ctr" with
// process 10 (2 threads, 3 fds, one a socket) and the pod itself 20.
func v1Tree(t *testing.T) Layout {
	root := t.TempDir()
	l := Layout{
		V1: map[string]string{}, PSI: filepath.Join(root, "unified"),
		Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"),
	}
	for _, c := range v1Controllers {
		l.V1[c] = filepath.Join(root, c)
	}
	writeTree(t, root, map[string]string{
		"cpuacct/pod/ctr/cpuacct.usage":      "2500000000\n",
		"cpuacct/pod/ctr/cpuacct.usage_user": "1500000000\n",
		"cpuacct/pod/ctr/cpuacct.usage_sys":  "1000000000\n",
		"cpu/pod/ctr/cpu.stat":               "nr_periods 30\nnr_throttled 7\nthrottled_time 3000000000\n",
		"cpu/pod/ctr/cpu.cfs_period_us":      "100000\n",
		"cpu/pod/ctr/cpu.cfs_quota_us":       "-1\n",
		"cpu/pod/ctr/cpu.shares":             "2\n",
		"memory/pod/ctr/memory.stat": "cache 1000\nrss 2000\nmapped_file 300\nswap 0\npgfault 10\npgmajfault 1\ninactive_file 100\n" +
			"total_cache 5000\ntotal_rss 6000\ntotal_mapped_file 700\ntotal_swap 50\ntotal_pgfault 40\ntotal_pgmajfault 4\ntotal_inactive_file 500\n",
		"memory/pod/ctr/memory.usage_in_bytes":                    "12000\n",
		"memory/pod/ctr/memory.max_usage_in_bytes":                "20000\n",
		"memory/pod/ctr/memory.failcnt":                           "3\n",
		"memory/pod/ctr/memory.kmem.usage_in_bytes":               "800\n",
		"memory/pod/ctr/memory.oom_control":                       "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory/pod/ctr/memory.limit_in_bytes":                    "67108864\n",
		"memory/pod/ctr/memory.memsw.limit_in_bytes":              "9223372036854771712\n",
		"memory/pod/ctr/memory.soft_limit_in_bytes":               "9223372036854771712\n",
		"memory/pod/ctr/cgroup.procs":                             "",
		"pids/pod/ctr/pids.current":                               "2\n",
		"pids/pod/ctr/pids.max":                                   "max\n",
		"pids/pod/ctr/cgroup.procs":                               "10\n",
		"pids/pod/cgroup.procs":                                   "20\n",
		"blkio/pod/ctr/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
		"blkio/pod/ctr/blkio.throttle.io_serviced_recursive":      "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
		"hugetlb/pod/ctr/hugetlb.2MB.usage_in_bytes":              "2097152\n",
		"hugetlb/pod/ctr/hugetlb.2MB.max_usage_in_bytes":          "4194304\n",
		"hugetlb/pod/ctr/hugetlb.2MB.rsvd.usage_in_bytes":         "0\n",
		"unified/pod/ctr/cpu.pressure":                            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n",
		"unified/pod/ctr/memory.pressure":                         "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"unified/pod/ctr/io.pressure":                             "some avg10=0.00 avg60=0.00 avg300=0.00 total=3000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
		"cpuacct/pod/cpuacct.usage":                               "9000000000\n",
		"cpuacct/pod/cpuacct.usage_user":                          "6000000000\n",
		"cpuacct/pod/cpuacct.usage_sys":                           "3000000000\n",
		"memory/pod/memory.stat":                                  "total_rss 7000\n",
		"memory/pod/memory.usage_in_bytes":                        "15000\n",
		"proc/10/limits":                                          limits,
		"proc/20/net/dev":                                         netDev,
		"sys/dev/block/8:0/uevent":                                "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n",
	})
	fakeProc(t, l.Proc, "10", 2, "/dev/null", "socket:[1234]", "pipe:[99]")
	fakeProc(t, l.Proc, "20", 1, "/dev/null")
	return l
}

// v2Tree is a cgroup v2 host with the same pod.
func v2Tree(t *testing.T) Layout {
	root := t.TempDir()
	cg := filepath.Join(root, "cgroup")
	l := Layout{Unified: cg, PSI: cg, Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys")}
	writeTree(t, root, map[string]string{
		"cgroup/pod/ctr/cpu.stat":                 "usage_usec 2500000\nuser_usec 1500000\nsystem_usec 1000000\nnr_periods 30\nnr_throttled 7\nthrottled_usec 3000000\n",
		"cgroup/pod/ctr/cpu.max":                  "20000 100000\n",
		"cgroup/pod/ctr/cpu.weight":               "100\n",
		"cgroup/pod/ctr/memory.stat":              "anon 6000\nfile 5000\nfile_mapped 700\ninactive_file 500\npgfault 40\npgmajfault 4\nkernel 800\n",
		"cgroup/pod/ctr/memory.current":           "12000\n",
		"cgroup/pod/ctr/memory.peak":              "20000\n",
		"cgroup/pod/ctr/memory.swap.current":      "50\n",
		"cgroup/pod/ctr/memory.events":            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n",
		"cgroup/pod/ctr/memory.max":               "67108864\n",
		"cgroup/pod/ctr/memory.swap.max":          "max\n",
		"cgroup/pod/ctr/memory.low":               "1024\n",
		"cgroup/pod/ctr/pids.current":             "2\n",
		"cgroup/pod/ctr/pids.max":                 "100\n",
		"cgroup/pod/ctr/cgroup.procs":             "10\n",
		"cgroup/pod/ctr/io.stat":                  "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
		"cgroup/pod/ctr/hugetlb.2MB.current":      "2097152\n",
		"cgroup/pod/ctr/hugetlb.2MB.rsvd.current": "0\n",
		"cgroup/pod/ctr/cpu.pressure":             "some avg10=0.00 avg60=0.00 avg300=0.00 total=5000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n",
		"cgroup/pod/ctr/memory.pressure":          "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"cgroup/pod/ctr/io.pressure":              "some avg10=0.00 avg60=0.00 avg300=0.00 total=3000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
		"cgroup/pod/cpu.stat":                     "usage_usec 9000000\nuser_usec 6000000\nsystem_usec 3000000\n",
		"cgroup/pod/memory.stat":                  "anon 7000\n",
		"cgroup/pod/memory.current":               "15000\n",
		"cgroup/pod/cgroup.procs":                 "20\n",
		"proc/10/limits":                          limits,
		"proc/20/net/dev":                         netDev,
	})
	fakeProc(t, l.Proc, "10", 2, "/dev/null", "socket:[1234]", "pipe:[99]")
	fakeProc(t, l.Proc, "20", 1, "/dev/null")
	return l
}

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       Layout
	}{{
		name: "hybrid",
		text: `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
		want: Layout{
			V1: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
				"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids",
			},
			PSI: "/sys/fs/cgroup/unified", Proc: "/proc", Sys: "/sys",
		},
	}, {
		name: "unified",
		text: "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
		want: Layout{Unified: "/sys/fs/cgroup", PSI: "/sys/fs/cgroup", Proc: "/proc", Sys: "/sys"},
	}, {
		name: "escaped mountpoint",
		text: `40 31 0:37 / /cg\040v2 rw - cgroup2 cgroup2 rw` + "\n",
		want: Layout{Unified: "/cg v2", PSI: "/cg v2", Proc: "/proc", Sys: "/sys"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseMountinfo(strings.NewReader(tc.text))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadCgroup(t *testing.T) {
	wantMem := &MemoryStats{
		Usage: 12000, MaxUsage: 20000, WorkingSet: 11500, Cache: 5000, RSS: 6000, MappedFile: 700,
		Swap: 50, Kernel: 800, Failcnt: 3, OOMKills: 2, PgFault: 10, PgMajFault: 1, HierPgFault: 40, HierPgMajFault: 4,
	}
	wantMemV2 := *wantMem
	wantMemV2.PgFault, wantMemV2.PgMajFault = 40, 4
	common := CgroupStats{
		CPU:      &CPUStats{UsageNanos: 2.5e9, UserNanos: 1.5e9, SystemNanos: 1e9},
		CFS:      &CFSStats{Periods: 30, ThrottledPeriods: 7, ThrottledNanos: 3e9},
		Procs:    &ProcStats{Processes: 1, Threads: 2, FDs: 3, Sockets: 1, Pids: []int{10}},
		Pressure: &PressureStats{CPUSome: 5e6, CPUFull: 2e6, MemorySome: 1e6, IOSome: 3e6, IOFull: 1e6},
	}
	for _, tc := range []struct {
		name   string
		layout func(*testing.T) Layout
		want   func() *CgroupStats
	}{{
		name: "v1", layout: v1Tree,
		want: func() *CgroupStats {
			w := common
			w.Memory = wantMem
			w.Pids = &PidsStats{Current: 2, Max: 0}
			w.IO = []IOStat{{8, 0, "Read", 4096, 1}, {8, 0, "Total", 12288, 3}, {8, 0, "Write", 8192, 2}}
			w.Hugetlb = []HugetlbStat{{PageSize: "2MB", Usage: 2097152, MaxUsage: 4194304, HasMax: true}}
			w.Spec = &SpecStats{CPUPeriod: 100000, CPUShares: 2, MemoryLimit: 67108864}
			return &w
		},
	}, {
		name: "v2", layout: v2Tree,
		want: func() *CgroupStats {
			w := common
			w.Memory = &wantMemV2
			w.Pids = &PidsStats{Current: 2, Max: 100}
			w.IO = []IOStat{{8, 0, "Discard", 0, 0}, {8, 0, "Read", 4096, 1}, {8, 0, "Write", 8192, 2}}
			w.Hugetlb = []HugetlbStat{{PageSize: "2MB", Usage: 2097152}}
			w.Spec = &SpecStats{CPUPeriod: 100000, CPUQuota: 20000, CPUShares: 2597, MemoryLimit: 67108864, MemoryReservation: 1024}
			return &w
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadCgroup(tc.layout(t), "/pod/ctr")
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want()
			for _, f := range []struct {
				name      string
				got, want any
			}{
				{"CPU", got.CPU, want.CPU}, {"CFS", got.CFS, want.CFS}, {"Memory", got.Memory, want.Memory},
				{"Pids", got.Pids, want.Pids}, {"Procs", got.Procs, want.Procs}, {"Pressure", got.Pressure, want.Pressure},
				{"Spec", got.Spec, want.Spec}, {"IO", got.IO, want.IO}, {"Hugetlb", got.Hugetlb, want.Hugetlb},
			} {
				if !reflect.DeepEqual(f.got, f.want) {
					t.Errorf("%s: got %+v, want %+v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func TestReadCgroupMissing(t *testing.T) {
	for name, l := range map[string]Layout{"v1": v1Tree(t), "v2": v2Tree(t), "nothing mounted": {}} {
		if _, err := ReadCgroup(l, "/gone"); !errors.Is(err, ErrNoCgroup) {
			t.Errorf("%s: err = %v, want ErrNoCgroup", name, err)
		}
	}
}

func TestReadCgroupPartial(t *testing.T) {
	// A cgroup with only a memory controller: the rest is nil, not zero.
	root := t.TempDir()
	l := Layout{V1: map[string]string{"memory": filepath.Join(root, "memory")}, Proc: filepath.Join(root, "proc")}
	writeTree(t, root, map[string]string{"memory/c/memory.stat": "rss 5\n", "memory/c/memory.usage_in_bytes": "10\n"})
	st, err := ReadCgroup(l, "c")
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU != nil || st.CFS != nil || st.Pids != nil || st.Pressure != nil || st.IO != nil || st.Hugetlb != nil {
		t.Errorf("missing controllers read as %+v", st)
	}
	if st.Memory == nil || st.Memory.RSS != 5 || st.Memory.Usage != 10 {
		t.Errorf("memory = %+v", st.Memory)
	}
}

func TestCgroupPidsWalksDescendants(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"pod/cgroup.procs":     "3\n",
		"pod/a/cgroup.procs":   "1\n2\n",
		"pod/b/cgroup.procs":   "2\n4\n",
		"pod/b/c/cgroup.procs": "",
	})
	if got, want := CgroupPids(filepath.Join(root, "pod")), []int{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := CgroupPids(filepath.Join(root, "gone")); len(got) != 0 {
		t.Errorf("missing cgroup: got %v", got)
	}
}

func TestReadProcsSkipsExited(t *testing.T) {
	proc := t.TempDir()
	fakeProc(t, proc, "1", 3, "socket:[1]", "socket:[2]", "/x")
	got := ReadProcs(proc, []int{1, 99})
	want := &ProcStats{Processes: 1, Threads: 3, FDs: 3, Sockets: 2, Pids: []int{1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReadNetDev(t *testing.T) {
	proc := t.TempDir()
	writeTree(t, proc, map[string]string{"7/net/dev": netDev})
	got, err := ReadNetDev(proc, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []NetDev{{Name: "eth0", RxBytes: 1000, RxPackets: 10, RxErrors: 1, RxDropped: 2, TxBytes: 2000, TxPackets: 20, TxErrors: 3, TxDropped: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ReadNetDev(proc, 8); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestReadUlimits(t *testing.T) {
	proc := t.TempDir()
	writeTree(t, proc, map[string]string{
		"1/limits": limits,
		"2/limits": "Max open files            unlimited            unlimited            files\n",
	})
	for pid, want := range map[int][]Ulimit{1: {{Name: "max_open_files", Soft: 1024}}, 2: nil} {
		got, err := ReadUlimits(proc, pid)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("pid %d: got %+v, %v; want %+v", pid, got, err, want)
		}
	}
}

func TestDeviceName(t *testing.T) {
	sys := t.TempDir()
	writeTree(t, sys, map[string]string{"dev/block/8:0/uevent": "MAJOR=8\nMINOR=0\nDEVNAME=sda\n"})
	if err := os.MkdirAll(filepath.Join(sys, "devices", "vdb"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../devices/vdb", filepath.Join(sys, "dev", "block", "254:16")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		major, minor uint64
		want         string
	}{{8, 0, "/dev/sda"}, {254, 16, "/dev/vdb"}, {9, 9, "9:9"}} {
		if got := DeviceName(sys, tc.major, tc.minor); got != tc.want {
			t.Errorf("%d:%d = %q, want %q", tc.major, tc.minor, got, tc.want)
		}
	}
}

// criticalNames are the metrics critest v1.37.0 expects
// (expectedMetricDescriptorNames in cri-tools pkg/validate/pod.go).
var criticalNames = []string{
	"container_blkio_device_usage_total", "container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
	"container_cpu_cfs_throttled_seconds_total", "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total",
	"container_cpu_user_seconds_total", "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total",
	"container_fs_limit_bytes", "container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
	"container_fs_writes_bytes_total", "container_fs_writes_total", "container_hugetlb_max_usage_bytes",
	"container_hugetlb_usage_bytes", "container_last_seen", "container_memory_cache", "container_memory_failcnt",
	"container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total", "container_network_receive_packets_total",
	"container_network_transmit_bytes_total", "container_network_transmit_errors_total",
	"container_network_transmit_packets_dropped_total", "container_network_transmit_packets_total",
	"container_oom_events_total", "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
	"container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
	"container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
	"container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_quota",
	"container_spec_cpu_shares", "container_spec_memory_limit_bytes", "container_spec_memory_reservation_limit_bytes",
	"container_spec_memory_swap_limit_bytes", "container_start_time_seconds", "container_threads", "container_threads_max",
	"container_ulimits_soft",
}

func TestDescriptors(t *testing.T) {
	descs := Descriptors()
	seen := map[string]bool{}
	for _, d := range descs {
		if seen[d.Name] {
			t.Errorf("%s described twice", d.Name)
		}
		seen[d.Name] = true
		if d.Help == "" || len(d.LabelKeys) < len(baseLabelKeys) || !slices.Equal(d.LabelKeys[:len(baseLabelKeys)], baseLabelKeys) {
			t.Errorf("%s: help %q, label keys %v", d.Name, d.Help, d.LabelKeys)
		}
	}
	for _, n := range criticalNames {
		if !seen[n] {
			t.Errorf("%s not described", n)
		}
	}
	// Callers may change what they get without changing the next answer.
	descs[0].LabelKeys[0] = "changed"
	if Descriptors()[0].LabelKeys[0] != "container" {
		t.Error("descriptors share label keys between calls")
	}
}

type fakeLayers struct {
	root  string
	usage map[string]uint64
}

func (f fakeLayers) WritableLayerUsage(id string) (uint64, uint64, error) {
	b, ok := f.usage[id]
	if !ok {
		return 0, 0, os.ErrNotExist
	}
	return b, 10, nil
}

func (f fakeLayers) LayersRoot() string { return f.root }

// find returns the value of the first metric named name whose label values
// end with suffix.
func find(ms []*runtimeapi.Metric, name string, suffix ...string) (uint64, []string, bool) {
	for _, m := range ms {
		if m.Name == name && len(m.LabelValues) >= len(suffix) && slices.Equal(m.LabelValues[len(m.LabelValues)-len(suffix):], suffix) {
			return m.Value.GetValue(), m.LabelValues, true
		}
	}
	return 0, nil, false
}

func testPod() *Pod {
	started := time.Unix(1700000000, 0)
	return &Pod{
		ID: "sb1", Name: "web", Namespace: "ns", CgroupRel: "/pod", Pid: 20, CreatedAt: started.Add(-time.Second),
		Containers: []Container{{
			ID: "c1", Name: "app", Image: "busybox:1.36", CgroupRel: "/pod/ctr", Pid: 10, StartedAt: started,
			Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 50000, CpuQuota: 10000, MemorySwapLimitInBytes: 1 << 27},
		}},
	}
}

func TestCollectEmitsEveryDescriptor(t *testing.T) {
	descs := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range Descriptors() {
		descs[d.Name] = d
	}
	for name, layout := range map[string]func(*testing.T) Layout{"v1": v1Tree, "v2": v2Tree} {
		t.Run(name, func(t *testing.T) {
			now := time.Unix(1800000000, 0)
			c := &Collector{Layout: layout(t), Layers: fakeLayers{root: t.TempDir(), usage: map[string]uint64{"c1": 4096}}, Now: func() time.Time { return now }}
			got := c.Collect(testPod())
			if got.PodSandboxId != "sb1" || len(got.ContainerMetrics) != 1 || got.ContainerMetrics[0].ContainerId != "c1" {
				t.Fatalf("got %v", got)
			}
			emitted := map[string]bool{}
			all := append(slices.Clone(got.Metrics), got.ContainerMetrics[0].Metrics...)
			for _, m := range all {
				emitted[m.Name] = true
				d := descs[m.Name]
				if d == nil {
					t.Errorf("%s has no descriptor", m.Name)
					continue
				}
				if len(m.LabelValues) != len(d.LabelKeys) {
					t.Errorf("%s: label values %v for keys %v", m.Name, m.LabelValues, d.LabelKeys)
				}
				if m.Timestamp != now.UnixNano() || m.Value == nil {
					t.Errorf("%s: timestamp %d, value %v", m.Name, m.Timestamp, m.Value)
				}
			}
			for d := range descs {
				// v2 keeps no maximum hugepage usage.
				if !emitted[d] && !(name == "v2" && d == HugetlbMaxUsageBytes) {
					t.Errorf("%s never emitted", d)
				}
			}
		})
	}
}

func TestCollectValues(t *testing.T) {
	now := time.Unix(1800000000, 0)
	c := &Collector{Layout: v1Tree(t), Layers: fakeLayers{root: t.TempDir(), usage: map[string]uint64{"c1": 4096}}, Now: func() time.Time { return now }}
	got := c.Collect(testPod())
	pod, ctr := got.Metrics, got.ContainerMetrics[0].Metrics
	podLabels := []string{"", "/pod", "", "sb1", "ns", "web"}
	ctrLabels := []string{"app", "/pod/ctr", "busybox:1.36", "c1", "ns", "web"}
	for _, tc := range []struct {
		ms         []*runtimeapi.Metric
		name       string
		extra      []string
		wantLabels []string
		want       uint64
	}{
		{pod, CPUUsageSecondsTotal, nil, podLabels, 9},
		{pod, CPUUserSecondsTotal, nil, podLabels, 6},
		{pod, MemoryUsageBytes, nil, podLabels, 15000},
		{pod, MemoryRSS, nil, podLabels, 7000},
		{pod, Processes, nil, podLabels, 2},
		{pod, Threads, nil, podLabels, 3},
		{pod, FileDescriptors, nil, podLabels, 4},
		{pod, StartTimeSeconds, nil, podLabels, 1699999999},
		{pod, LastSeen, nil, podLabels, 1800000000},
		{pod, NetworkReceiveBytesTotal, []string{"eth0"}, append(slices.Clone(podLabels), "eth0"), 1000},
		{pod, NetworkReceivePacketsTotal, []string{"eth0"}, nil, 10},
		{pod, NetworkReceiveErrorsTotal, []string{"eth0"}, nil, 1},
		{pod, NetworkReceiveDroppedTotal, []string{"eth0"}, nil, 2},
		{pod, NetworkTransmitBytesTotal, []string{"eth0"}, nil, 2000},
		{pod, NetworkTransmitPacketsTotal, []string{"eth0"}, nil, 20},
		{pod, NetworkTransmitErrorsTotal, []string{"eth0"}, nil, 3},
		{pod, NetworkTransmitDroppedTotal, []string{"eth0"}, nil, 4},
		{ctr, CPUUsageSecondsTotal, nil, ctrLabels, 2},
		{ctr, CPUUserSecondsTotal, nil, nil, 1},
		{ctr, CPUSystemSecondsTotal, nil, nil, 1},
		{ctr, CPUCfsPeriodsTotal, nil, nil, 30},
		{ctr, CPUCfsThrottledPeriodsTotal, nil, nil, 7},
		{ctr, CPUCfsThrottledSecondsTotal, nil, nil, 3},
		{ctr, MemoryUsageBytes, nil, nil, 12000},
		{ctr, MemoryMaxUsageBytes, nil, nil, 20000},
		{ctr, MemoryWorkingSetBytes, nil, nil, 11500},
		{ctr, MemoryCache, nil, nil, 5000},
		{ctr, MemoryRSS, nil, nil, 6000},
		{ctr, MemoryMappedFile, nil, nil, 700},
		{ctr, MemorySwap, nil, nil, 50},
		{ctr, MemoryKernelUsage, nil, nil, 800},
		{ctr, MemoryFailcnt, nil, nil, 3},
		{ctr, MemoryFailuresTotal, []string{"pgfault", "container"}, nil, 10},
		{ctr, MemoryFailuresTotal, []string{"pgmajfault", "hierarchy"}, append(slices.Clone(ctrLabels), "pgmajfault", "hierarchy"), 4},
		{ctr, OOMEventsTotal, nil, nil, 2},
		{ctr, HugetlbUsageBytes, []string{"2MB"}, nil, 2097152},
		{ctr, HugetlbMaxUsageBytes, []string{"2MB"}, nil, 4194304},
		{ctr, PressureCPUWaitingSeconds, nil, nil, 5},
		{ctr, PressureCPUStalledSeconds, nil, nil, 2},
		{ctr, PressureIOWaitingSeconds, nil, nil, 3},
		{ctr, BlkioDeviceUsageTotal, []string{"/dev/sda", "8", "0", "Write"}, nil, 8192},
		{ctr, FsReadsBytesTotal, []string{"/dev/sda"}, nil, 4096},
		{ctr, FsReadsTotal, []string{"/dev/sda"}, nil, 1},
		{ctr, FsWritesBytesTotal, []string{"/dev/sda"}, nil, 8192},
		{ctr, FsWritesTotal, []string{"/dev/sda"}, nil, 2},
		{ctr, Processes, nil, nil, 1},
		{ctr, Threads, nil, nil, 2},
		{ctr, ThreadsMax, nil, nil, 0},
		{ctr, FileDescriptors, nil, nil, 3},
		{ctr, Sockets, nil, nil, 1},
		{ctr, UlimitsSoft, []string{"max_open_files"}, nil, 1024},
		{ctr, StartTimeSeconds, nil, nil, 1700000000},
		// Resources win over the cgroup where set...
		{ctr, SpecCPUPeriod, nil, nil, 50000},
		{ctr, SpecCPUQuota, nil, nil, 10000},
		{ctr, SpecMemorySwapLimitBytes, nil, nil, 1 << 27},
		// ...and the cgroup tells the rest.
		{ctr, SpecCPUShares, nil, nil, 2},
		{ctr, SpecMemoryLimitBytes, nil, nil, 67108864},
		{ctr, SpecMemoryReservationBytes, nil, nil, 0},
	} {
		v, labels, ok := find(tc.ms, tc.name, tc.extra...)
		if !ok {
			t.Errorf("%s%v missing", tc.name, tc.extra)
			continue
		}
		if v != tc.want {
			t.Errorf("%s%v = %d, want %d", tc.name, tc.extra, v, tc.want)
		}
		if tc.wantLabels != nil && !slices.Equal(labels, tc.wantLabels) {
			t.Errorf("%s labels = %q, want %q", tc.name, labels, tc.wantLabels)
		}
	}
	for _, name := range []string{NetworkReceiveBytesTotal} {
		if _, _, ok := find(pod, name, "lo"); ok {
			t.Errorf("%s reported for lo", name)
		}
	}
	if _, _, ok := find(ctr, FsUsageBytes); !ok {
		t.Error("no writable layer usage")
	}
}

func TestCollectSumsWithoutPodCgroup(t *testing.T) {
	l := v1Tree(t)
	writeTree(t, filepath.Dir(l.V1["memory"]), map[string]string{
		"cpuacct/pause/cpuacct.usage":        "1000000000\n",
		"cpuacct/pause/cpuacct.usage_user":   "0\n",
		"cpuacct/pause/cpuacct.usage_sys":    "1000000000\n",
		"memory/pause/memory.stat":           "total_rss 100\n",
		"memory/pause/memory.usage_in_bytes": "1000\n",
		"cpu/pause/cpu.shares":               "2\n",
	})
	p := testPod()
	p.CgroupRel, p.SumCgroups = "", []string{"/pause", "/pod/ctr", "/gone"}
	p.HostNetwork = true
	got := (&Collector{Layout: l}).Collect(p)
	for _, tc := range []struct {
		name string
		want uint64
	}{{CPUUsageSecondsTotal, 3}, {MemoryUsageBytes, 13000}, {MemoryRSS, 6100}, {Processes, 1}} {
		if v, labels, ok := find(got.Metrics, tc.name); !ok || v != tc.want || labels[1] != "" {
			t.Errorf("%s = %d (%v, labels %q), want %d", tc.name, v, ok, labels, tc.want)
		}
	}
	for _, name := range []string{SpecCPUShares, PressureCPUWaitingSeconds, NetworkReceiveBytesTotal} {
		if _, _, ok := find(got.Metrics, name); ok {
			t.Errorf("pod without a cgroup reports %s", name)
		}
	}
	// No layers: no filesystem metrics, the rest as before.
	if _, _, ok := find(got.ContainerMetrics[0].Metrics, FsLimitBytes); ok {
		t.Error("filesystem metrics without layers")
	}
}

func TestCollectGoneContainer(t *testing.T) {
	p := testPod()
	p.Containers[0].CgroupRel, p.Containers[0].Pid = "/gone", 0
	got := (&Collector{Layout: v2Tree(t)}).Collect(p)
	ms := got.ContainerMetrics[0].Metrics
	if _, _, ok := find(ms, CPUUsageSecondsTotal); ok {
		t.Error("CPU reported for a container without a cgroup")
	}
	for _, name := range []string{LastSeen, StartTimeSeconds, SpecCPUPeriod} {
		if _, _, ok := find(ms, name); !ok {
			t.Errorf("%s missing", name)
		}
	}
}
