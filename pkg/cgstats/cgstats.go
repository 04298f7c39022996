// Package cgstats reads CPU, memory and process statistics of a cgroup, on
// cgroup v1 (per-controller hierarchies) and v2 (unified), the way
// cAdvisor and kubelet define them (working set = usage - inactive file).
package cgstats

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stats of one cgroup at one time.
type Stats struct {
	Timestamp time.Time
	// CPUUsageNanos is the cumulative CPU time.
	CPUUsageNanos uint64
	// MemoryUsage is the charged memory; WorkingSet excludes inactive file
	// pages (what kubelet evicts on).
	MemoryUsage, WorkingSet, RSS, PageFaults, MajorPageFaults uint64
	// MemoryLimit is 0 when unlimited.
	MemoryLimit uint64
	// Processes is the number of tasks in the cgroup.
	Processes uint64
}

var unified = func() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}()

// Unified reports whether the host uses cgroup v2 only.
func Unified() bool { return unified }

// dir is the directory of cgroup path (as in an OCI spec's cgroupsPath,
// already expanded for systemd) for a v1 controller.
func dir(controller, path string) string {
	if unified {
		return filepath.Join("/sys/fs/cgroup", path)
	}
	return filepath.Join("/sys/fs/cgroup", controller, path)
}

// Exists reports whether the cgroup exists.
func Exists(path string) bool {
	_, err := os.Stat(dir("memory", path))
	return err == nil
}

// Read returns the statistics of the cgroup at path.
func Read(path string) (*Stats, error) {
	s := &Stats{Timestamp: time.Now()}
	var mem map[string]uint64
	var err error
	if unified {
		d := dir("", path)
		cpu, _ := ReadKV(filepath.Join(d, "cpu.stat"))
		s.CPUUsageNanos = cpu["usage_usec"] * 1000
		if mem, err = ReadKV(filepath.Join(d, "memory.stat")); err != nil {
			return nil, err
		}
		s.MemoryUsage, _ = ReadUint(filepath.Join(d, "memory.current"))
		s.MemoryLimit, _ = ReadUint(filepath.Join(d, "memory.max"))
		s.RSS = mem["anon"]
		s.WorkingSet = Sub(s.MemoryUsage, mem["inactive_file"])
		s.PageFaults, s.MajorPageFaults = mem["pgfault"], mem["pgmajfault"]
		s.Processes, _ = ReadUint(filepath.Join(d, "pids.current"))
		return s, nil
	}
	s.CPUUsageNanos, _ = ReadUint(filepath.Join(dir("cpuacct", path), "cpuacct.usage"))
	md := dir("memory", path)
	if mem, err = ReadKV(filepath.Join(md, "memory.stat")); err != nil {
		return nil, err
	}
	s.MemoryUsage, _ = ReadUint(filepath.Join(md, "memory.usage_in_bytes"))
	if lim, err := ReadUint(filepath.Join(md, "memory.limit_in_bytes")); err == nil && lim < 1<<62 {
		s.MemoryLimit = lim
	}
	s.RSS = mem["total_rss"]
	s.WorkingSet = Sub(s.MemoryUsage, mem["total_inactive_file"])
	s.PageFaults, s.MajorPageFaults = mem["total_pgfault"], mem["total_pgmajfault"]
	if n, err := ReadUint(filepath.Join(dir("pids", path), "pids.current")); err == nil {
		s.Processes = n
	} else {
		s.Processes = countLines(filepath.Join(md, "tasks"))
	}
	return s, nil
}

// Sub is a - b, or 0 when b is larger (counters read at different times).
func Sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// ReadUint reads a cgroup file holding one number; "max" (v2's unlimited)
// reads as 0.
func ReadUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// ReadKV reads a cgroup file of "key value" lines (cpu.stat, memory.stat,
// memory.oom_control...).
func ReadKV(p string) (map[string]uint64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

func countLines(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	return uint64(strings.Count(string(b), "\n"))
}

// Rates turns cumulative CPU time into usage in nanocores between two
// reads of the same cgroup, remembering the previous sample per key.
type Rates struct {
	mu   sync.Mutex
	last map[string]*Stats
}

// NanoCores returns the CPU rate since the previous call for key (0 the
// first time) and remembers s.
func (r *Rates) NanoCores(key string, s *Stats) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]*Stats{}
	}
	prev := r.last[key]
	r.last[key] = s
	if prev == nil || !s.Timestamp.After(prev.Timestamp) || s.CPUUsageNanos < prev.CPUUsageNanos {
		return 0
	}
	return uint64(float64(s.CPUUsageNanos-prev.CPUUsageNanos) / s.Timestamp.Sub(prev.Timestamp).Seconds())
}

// Forget drops the remembered sample of key.
func (r *Rates) Forget(key string) {
	r.mu.Lock()
	delete(r.last, key)
	r.mu.Unlock()
}
