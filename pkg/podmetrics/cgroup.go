package podmetrics

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cri-rt/cri-rt/pkg/cgstats"
)

// CgroupStats are what one cgroup (with its descendants) reports. A nil
// section was not readable (controller not mounted, file missing).
type CgroupStats struct {
	CPU      *CPUStats
	CFS      *CFSStats
	Memory   *MemoryStats
	Pids     *PidsStats
	Procs    *ProcStats
	Pressure *PressureStats
	Spec     *SpecStats
	// IO has one entry per device and operation, sorted.
	IO []IOStat
	// Hugetlb has one entry per huge page size, sorted.
	Hugetlb []HugetlbStat
}

// CPUStats are cumulative CPU times in nanoseconds.
type CPUStats struct {
	UsageNanos, UserNanos, SystemNanos uint64
}

// CFSStats are the CFS bandwidth counters (cpu.stat).
type CFSStats struct {
	Periods, ThrottledPeriods, ThrottledNanos uint64
}

// MemoryStats follow cAdvisor's definitions: WorkingSet is Usage less the
// inactive file pages; Cache, RSS, MappedFile and Swap are hierarchical.
type MemoryStats struct {
	Usage, MaxUsage, WorkingSet  uint64
	Cache, RSS, MappedFile, Swap uint64
	Kernel, Failcnt, OOMKills    uint64
	PgFault, PgMajFault          uint64 // this cgroup only
	HierPgFault, HierPgMajFault  uint64 // with descendants
}

// PidsStats come from the pids controller; Max is 0 when unlimited.
type PidsStats struct {
	Current, Max uint64
}

// ProcStats count what the cgroup's processes hold, from procfs.
type ProcStats struct {
	Processes, Threads, FDs, Sockets uint64
	// Pids are the processes found, sorted.
	Pids []int
}

// PressureStats are the PSI totals in microseconds: Some is the time some
// tasks waited, Full the time all tasks stalled.
type PressureStats struct {
	CPUSome, CPUFull, MemorySome, MemoryFull, IOSome, IOFull uint64
}

// SpecStats are the limits the cgroup enforces; 0 means unlimited (or, for
// shares and period, not set).
type SpecStats struct {
	CPUPeriod, CPUQuota, CPUShares                  uint64
	MemoryLimit, MemorySwapLimit, MemoryReservation uint64
}

// IOStat is one device's count of one block I/O operation.
type IOStat struct {
	Major, Minor uint64
	// Op is Read, Write, Sync, Async, Discard or Total.
	Op         string
	Bytes, Ops uint64
}

// HugetlbStat is the huge page usage of one page size (like "2MB").
type HugetlbStat struct {
	PageSize        string
	Usage, MaxUsage uint64
	// HasMax is false on cgroup v2, which keeps no maximum.
	HasMax bool
}

// ErrNoCgroup is returned when a cgroup does not exist.
var ErrNoCgroup = errors.New("cgroup does not exist")

// v1Unlimited is where cgroup v1 limits start to mean "no limit"
// (PAGE_COUNTER_MAX pages, rounded down to a page).
const v1Unlimited = 1 << 62

// ReadCgroup reads the cgroup at rel (relative to the hierarchy roots) and
// the processes in it and its descendants. It fails with ErrNoCgroup when
// the cgroup is gone (its memory, or unified, directory is missing).
func ReadCgroup(l Layout, rel string) (*CgroupStats, error) {
	probe := l.dir("memory", rel)
	if probe == "" {
		probe = l.dir("cpuacct", rel)
	}
	if probe == "" {
		return nil, fmt.Errorf("no memory or cpuacct cgroup hierarchy: %w", ErrNoCgroup)
	}
	if _, err := os.Stat(probe); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", rel, ErrNoCgroup)
	}
	st := &CgroupStats{}
	if l.v2() {
		d := l.dir("", rel)
		st.CPU, st.CFS = readCPUv2(d)
		st.Memory = readMemoryv2(d)
		st.Pids = readPids(d)
		st.IO = readIOv2(d)
		st.Hugetlb = readHugetlb(d, true)
		st.Spec = readSpecv2(d)
	} else {
		st.CPU = readCPUv1(l.dir("cpuacct", rel))
		st.CFS = readCFSv1(l.dir("cpu", rel))
		st.Memory = readMemoryv1(l.dir("memory", rel))
		st.Pids = readPids(l.dir("pids", rel))
		st.IO = readIOv1(l.dir("blkio", rel))
		st.Hugetlb = readHugetlb(l.dir("hugetlb", rel), false)
		st.Spec = readSpecv1(l.dir("cpu", rel), l.dir("memory", rel))
	}
	if l.PSI != "" {
		st.Pressure = readPressure(filepath.Join(l.PSI, rel))
	}
	procsDir := l.dir("pids", rel)
	if procsDir == "" {
		procsDir = probe
	}
	st.Procs = ReadProcs(l.Proc, CgroupPids(procsDir))
	return st, nil
}

func readCPUv1(d string) *CPUStats {
	if d == "" {
		return nil
	}
	usage, err := cgstats.ReadUint(filepath.Join(d, "cpuacct.usage"))
	if err != nil {
		return nil
	}
	c := &CPUStats{UsageNanos: usage}
	user, errU := cgstats.ReadUint(filepath.Join(d, "cpuacct.usage_user"))
	sys, errS := cgstats.ReadUint(filepath.Join(d, "cpuacct.usage_sys"))
	if errU == nil && errS == nil {
		c.UserNanos, c.SystemNanos = user, sys
		return c
	}
	// Older kernels: cpuacct.stat in USER_HZ (100 on every Linux ABI).
	if kv, err := cgstats.ReadKV(filepath.Join(d, "cpuacct.stat")); err == nil {
		const tick = 1e9 / 100
		c.UserNanos, c.SystemNanos = kv["user"]*tick, kv["system"]*tick
	}
	return c
}

func readCFSv1(d string) *CFSStats {
	if d == "" {
		return nil
	}
	kv, err := cgstats.ReadKV(filepath.Join(d, "cpu.stat"))
	if err != nil {
		return nil
	}
	return &CFSStats{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledNanos: kv["throttled_time"]}
}

func readCPUv2(d string) (*CPUStats, *CFSStats) {
	kv, err := cgstats.ReadKV(filepath.Join(d, "cpu.stat"))
	if err != nil {
		return nil, nil
	}
	cpu := &CPUStats{UsageNanos: kv["usage_usec"] * 1000, UserNanos: kv["user_usec"] * 1000, SystemNanos: kv["system_usec"] * 1000}
	cfs := &CFSStats{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledNanos: kv["throttled_usec"] * 1000}
	return cpu, cfs
}

func readMemoryv1(d string) *MemoryStats {
	if d == "" {
		return nil
	}
	kv, err := cgstats.ReadKV(filepath.Join(d, "memory.stat"))
	if err != nil {
		return nil
	}
	// Hierarchical (total_*) values when the kernel has them.
	hier := func(k string) uint64 {
		if v, ok := kv["total_"+k]; ok {
			return v
		}
		return kv[k]
	}
	m := &MemoryStats{
		Cache: hier("cache"), RSS: hier("rss"), MappedFile: hier("mapped_file"),
		PgFault: kv["pgfault"], PgMajFault: kv["pgmajfault"],
		HierPgFault: hier("pgfault"), HierPgMajFault: hier("pgmajfault"),
	}
	m.Usage, _ = cgstats.ReadUint(filepath.Join(d, "memory.usage_in_bytes"))
	m.MaxUsage, _ = cgstats.ReadUint(filepath.Join(d, "memory.max_usage_in_bytes"))
	m.WorkingSet = cgstats.Sub(m.Usage, hier("inactive_file"))
	m.Failcnt, _ = cgstats.ReadUint(filepath.Join(d, "memory.failcnt"))
	m.Kernel, _ = cgstats.ReadUint(filepath.Join(d, "memory.kmem.usage_in_bytes"))
	if v, ok := kv["total_swap"]; ok {
		m.Swap = v
	} else if v, ok := kv["swap"]; ok {
		m.Swap = v
	} else if memsw, err := cgstats.ReadUint(filepath.Join(d, "memory.memsw.usage_in_bytes")); err == nil {
		m.Swap = cgstats.Sub(memsw, m.Usage)
	}
	if oc, err := cgstats.ReadKV(filepath.Join(d, "memory.oom_control")); err == nil {
		m.OOMKills = oc["oom_kill"]
	}
	return m
}

func readMemoryv2(d string) *MemoryStats {
	kv, err := cgstats.ReadKV(filepath.Join(d, "memory.stat"))
	if err != nil {
		return nil
	}
	// memory.stat is hierarchical on v2: both fault scopes are the same.
	m := &MemoryStats{
		Cache: kv["file"], RSS: kv["anon"], MappedFile: kv["file_mapped"],
		PgFault: kv["pgfault"], PgMajFault: kv["pgmajfault"],
		HierPgFault: kv["pgfault"], HierPgMajFault: kv["pgmajfault"],
	}
	m.Usage, _ = cgstats.ReadUint(filepath.Join(d, "memory.current"))
	if peak, err := cgstats.ReadUint(filepath.Join(d, "memory.peak")); err == nil {
		m.MaxUsage = peak
	} else {
		// Kernels before 5.19 keep no peak: the current usage is the
		// best lower bound.
		m.MaxUsage = m.Usage
	}
	m.WorkingSet = cgstats.Sub(m.Usage, kv["inactive_file"])
	if k, ok := kv["kernel"]; ok {
		m.Kernel = k
	} else {
		m.Kernel = kv["kernel_stack"] + kv["pagetables"] + kv["percpu"] + kv["sock"] + kv["slab"]
	}
	m.Swap, _ = cgstats.ReadUint(filepath.Join(d, "memory.swap.current"))
	if ev, err := cgstats.ReadKV(filepath.Join(d, "memory.events")); err == nil {
		m.Failcnt, m.OOMKills = ev["max"], ev["oom_kill"]
	}
	return m
}

func readPids(d string) *PidsStats {
	if d == "" {
		return nil
	}
	cur, err := cgstats.ReadUint(filepath.Join(d, "pids.current"))
	if err != nil {
		return nil
	}
	p := &PidsStats{Current: cur}
	p.Max, _ = cgstats.ReadUint(filepath.Join(d, "pids.max"))
	return p
}

// readIOv1 reads the blkio throttle counters, recursive ones first (a pod
// cgroup's I/O is done in its children).
func readIOv1(d string) []IOStat {
	if d == "" {
		return nil
	}
	read := func(name string) (map[ioKey]uint64, bool) {
		for _, f := range []string{name + "_recursive", name} {
			if m, err := readBlkioFile(filepath.Join(d, f)); err == nil {
				return m, true
			}
		}
		return nil, false
	}
	bytes, okB := read("blkio.throttle.io_service_bytes")
	ops, okO := read("blkio.throttle.io_serviced")
	if !okB && !okO {
		return nil
	}
	keys := map[ioKey]bool{}
	for k := range bytes {
		keys[k] = true
	}
	for k := range ops {
		keys[k] = true
	}
	out := make([]IOStat, 0, len(keys))
	for k := range keys {
		out = append(out, IOStat{Major: k.major, Minor: k.minor, Op: k.op, Bytes: bytes[k], Ops: ops[k]})
	}
	sortIO(out)
	return out
}

type ioKey struct {
	major, minor uint64
	op           string
}

// readBlkioFile parses lines like "8:0 Read 4096"; the final "Total N"
// line is skipped.
func readBlkioFile(p string) (map[ioKey]uint64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[ioKey]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue
		}
		maj, mi, ok := parseDev(fs[0])
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(fs[2], 10, 64)
		if err != nil {
			continue
		}
		out[ioKey{maj, mi, fs[1]}] += v
	}
	return out, sc.Err()
}

// readIOv2 parses io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
func readIOv2(d string) []IOStat {
	f, err := os.Open(filepath.Join(d, "io.stat"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []IOStat
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		maj, mi, ok := parseDev(fs[0])
		if !ok {
			continue
		}
		kv := map[string]uint64{}
		for _, f := range fs[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				kv[k] = n
			}
		}
		out = append(out,
			IOStat{Major: maj, Minor: mi, Op: "Read", Bytes: kv["rbytes"], Ops: kv["rios"]},
			IOStat{Major: maj, Minor: mi, Op: "Write", Bytes: kv["wbytes"], Ops: kv["wios"]})
		if _, ok := kv["dbytes"]; ok {
			out = append(out, IOStat{Major: maj, Minor: mi, Op: "Discard", Bytes: kv["dbytes"], Ops: kv["dios"]})
		}
	}
	sortIO(out)
	return out
}

func sortIO(s []IOStat) {
	sort.Slice(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Major != b.Major {
			return a.Major < b.Major
		}
		if a.Minor != b.Minor {
			return a.Minor < b.Minor
		}
		return a.Op < b.Op
	})
}

func parseDev(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	ma, err1 := strconv.ParseUint(a, 10, 64)
	mi, err2 := strconv.ParseUint(b, 10, 64)
	return ma, mi, err1 == nil && err2 == nil
}

// readHugetlb reads hugetlb.<size>.usage_in_bytes and max_usage_in_bytes
// (v1) or hugetlb.<size>.current (v2), skipping the reservation counters.
func readHugetlb(d string, v2 bool) []HugetlbStat {
	if d == "" {
		return nil
	}
	suffix := ".usage_in_bytes"
	if v2 {
		suffix = ".current"
	}
	matches, _ := filepath.Glob(filepath.Join(d, "hugetlb.*"+suffix))
	var out []HugetlbStat
	for _, m := range matches {
		size := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "hugetlb."), suffix)
		if size == "" || strings.Contains(size, ".") {
			continue // hugetlb.<size>.rsvd.*
		}
		usage, err := cgstats.ReadUint(m)
		if err != nil {
			continue
		}
		h := HugetlbStat{PageSize: size, Usage: usage}
		if !v2 {
			if peak, err := cgstats.ReadUint(filepath.Join(d, "hugetlb."+size+".max_usage_in_bytes")); err == nil {
				h.MaxUsage, h.HasMax = peak, true
			}
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PageSize < out[j].PageSize })
	return out
}

// readPressure reads the "total=" of the some and full lines of
// cpu.pressure, memory.pressure and io.pressure.
func readPressure(d string) *PressureStats {
	read := func(name string) (some, full uint64, ok bool) {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err != nil {
			return 0, 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) == 0 {
				continue
			}
			var total uint64
			for _, f := range fs[1:] {
				if v, ok := strings.CutPrefix(f, "total="); ok {
					total, _ = strconv.ParseUint(v, 10, 64)
				}
			}
			switch fs[0] {
			case "some":
				some = total
			case "full":
				full = total
			}
		}
		return some, full, true
	}
	p := &PressureStats{}
	var okC, okM, okI bool
	p.CPUSome, p.CPUFull, okC = read("cpu.pressure")
	p.MemorySome, p.MemoryFull, okM = read("memory.pressure")
	p.IOSome, p.IOFull, okI = read("io.pressure")
	if !okC && !okM && !okI {
		return nil
	}
	return p
}

func readSpecv1(cpuDir, memDir string) *SpecStats {
	s := &SpecStats{}
	found := false
	if cpuDir != "" {
		if v, err := cgstats.ReadUint(filepath.Join(cpuDir, "cpu.cfs_period_us")); err == nil {
			s.CPUPeriod, found = v, true
		}
		if v, err := readInt(filepath.Join(cpuDir, "cpu.cfs_quota_us")); err == nil && v > 0 {
			s.CPUQuota = uint64(v)
		}
		if v, err := cgstats.ReadUint(filepath.Join(cpuDir, "cpu.shares")); err == nil {
			s.CPUShares, found = v, true
		}
	}
	if memDir != "" {
		limited := func(name string) uint64 {
			v, err := cgstats.ReadUint(filepath.Join(memDir, name))
			if err != nil || v >= v1Unlimited {
				return 0
			}
			return v
		}
		if _, err := os.Stat(filepath.Join(memDir, "memory.limit_in_bytes")); err == nil {
			found = true
		}
		s.MemoryLimit = limited("memory.limit_in_bytes")
		s.MemorySwapLimit = limited("memory.memsw.limit_in_bytes")
		s.MemoryReservation = limited("memory.soft_limit_in_bytes")
	}
	if !found {
		return nil
	}
	return s
}

func readSpecv2(d string) *SpecStats {
	s := &SpecStats{}
	found := false
	if b, err := os.ReadFile(filepath.Join(d, "cpu.max")); err == nil {
		found = true
		fs := strings.Fields(string(b))
		if len(fs) == 2 {
			if q, err := strconv.ParseUint(fs[0], 10, 64); err == nil {
				s.CPUQuota = q
			}
			s.CPUPeriod, _ = strconv.ParseUint(fs[1], 10, 64)
		}
	}
	if w, err := cgstats.ReadUint(filepath.Join(d, "cpu.weight")); err == nil && w > 0 {
		found = true
		// The inverse of runc's shares-to-weight conversion, as cAdvisor
		// does it.
		s.CPUShares = 2 + ((w-1)*262142)/9999
	}
	if v, err := cgstats.ReadUint(filepath.Join(d, "memory.max")); err == nil {
		found = true
		s.MemoryLimit = v
		if swap, err := cgstats.ReadUint(filepath.Join(d, "memory.swap.max")); err == nil && v > 0 && swap > 0 {
			// The CRI's swap limit is memory plus swap, as on v1.
			s.MemorySwapLimit = v + swap
		}
	}
	s.MemoryReservation, _ = cgstats.ReadUint(filepath.Join(d, "memory.low"))
	if !found {
		return nil
	}
	return s
}

// CgroupPids returns the processes in the cgroup at dir and in its
// descendants, from their cgroup.procs, sorted and without duplicates.
func CgroupPids(dir string) []int {
	seen := map[int]bool{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A child cgroup removed while walking; keep going.
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				seen[pid] = true
			}
		}
		return nil
	})
	out := make([]int, 0, len(seen))
	for pid := range seen {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// Add adds o to s, for a pod whose usage is the sum of its containers'.
// Limits (Spec) and pressure do not add up and are dropped; the maximum
// memory usage becomes the sum of maxima, an upper bound.
func (s *CgroupStats) Add(o *CgroupStats) {
	if o == nil {
		return
	}
	if o.CPU != nil {
		if s.CPU == nil {
			s.CPU = &CPUStats{}
		}
		s.CPU.UsageNanos += o.CPU.UsageNanos
		s.CPU.UserNanos += o.CPU.UserNanos
		s.CPU.SystemNanos += o.CPU.SystemNanos
	}
	if o.CFS != nil {
		if s.CFS == nil {
			s.CFS = &CFSStats{}
		}
		s.CFS.Periods += o.CFS.Periods
		s.CFS.ThrottledPeriods += o.CFS.ThrottledPeriods
		s.CFS.ThrottledNanos += o.CFS.ThrottledNanos
	}
	if o.Memory != nil {
		if s.Memory == nil {
			s.Memory = &MemoryStats{}
		}
		m, n := s.Memory, o.Memory
		m.Usage += n.Usage
		m.MaxUsage += n.MaxUsage
		m.WorkingSet += n.WorkingSet
		m.Cache += n.Cache
		m.RSS += n.RSS
		m.MappedFile += n.MappedFile
		m.Swap += n.Swap
		m.Kernel += n.Kernel
		m.Failcnt += n.Failcnt
		m.OOMKills += n.OOMKills
		m.PgFault += n.PgFault
		m.PgMajFault += n.PgMajFault
		m.HierPgFault += n.HierPgFault
		m.HierPgMajFault += n.HierPgMajFault
	}
	if o.Pids != nil {
		if s.Pids == nil {
			s.Pids = &PidsStats{}
		}
		// Limits do not add up: the sum has none.
		s.Pids.Current, s.Pids.Max = s.Pids.Current+o.Pids.Current, 0
	}
	if o.Procs != nil {
		if s.Procs == nil {
			s.Procs = &ProcStats{}
		}
		s.Procs.Processes += o.Procs.Processes
		s.Procs.Threads += o.Procs.Threads
		s.Procs.FDs += o.Procs.FDs
		s.Procs.Sockets += o.Procs.Sockets
		s.Procs.Pids = append(s.Procs.Pids, o.Procs.Pids...)
	}
	s.IO = addIO(s.IO, o.IO)
	s.Hugetlb = addHugetlb(s.Hugetlb, o.Hugetlb)
	s.Spec, s.Pressure = nil, nil
}

func addIO(a, b []IOStat) []IOStat {
	if len(b) == 0 {
		return a
	}
	idx := map[ioKey]int{}
	for i, e := range a {
		idx[ioKey{e.Major, e.Minor, e.Op}] = i
	}
	for _, e := range b {
		k := ioKey{e.Major, e.Minor, e.Op}
		if i, ok := idx[k]; ok {
			a[i].Bytes += e.Bytes
			a[i].Ops += e.Ops
			continue
		}
		idx[k] = len(a)
		a = append(a, e)
	}
	sortIO(a)
	return a
}

func addHugetlb(a, b []HugetlbStat) []HugetlbStat {
	for _, e := range b {
		i := sort.Search(len(a), func(i int) bool { return a[i].PageSize >= e.PageSize })
		if i < len(a) && a[i].PageSize == e.PageSize {
			a[i].Usage += e.Usage
			a[i].MaxUsage += e.MaxUsage
			a[i].HasMax = a[i].HasMax && e.HasMax
			continue
		}
		a = append(a, HugetlbStat{})
		copy(a[i+1:], a[i:])
		a[i] = e
	}
	return a
}

func readInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
