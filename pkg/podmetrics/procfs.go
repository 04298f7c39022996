package podmetrics

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ReadProcs counts the threads, file descriptors and sockets of pids from
// the procfs at proc. Processes that exited meanwhile are not counted.
func ReadProcs(proc string, pids []int) *ProcStats {
	st := &ProcStats{}
	for _, pid := range pids {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			continue
		}
		st.Processes++
		st.Pids = append(st.Pids, pid)
		st.Threads += uint64(len(tasks))
		fdDir := filepath.Join(dir, "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		st.FDs += uint64(len(fds))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:[") {
				st.Sockets++
			}
		}
	}
	return st
}

// NetDev is one interface's counters from /proc/<pid>/net/dev.
type NetDev struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ReadNetDev reads the interfaces of the network namespace of pid, from
// the procfs at proc, leaving out the loopback (as cAdvisor does).
func ReadNetDev(proc string, pid int) ([]NetDev, error) {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "net", "dev"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []NetDev
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		fs := strings.Fields(rest)
		if len(fs) < 16 || name == "lo" {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(fs[i], 10, 64); return v }
		out = append(out, NetDev{
			Name:    name,
			RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11),
		})
	}
	return out, sc.Err()
}

// Ulimit is one soft resource limit of a process.
type Ulimit struct {
	// Name is cAdvisor's: max_open_files.
	Name string
	Soft uint64
}

// ReadUlimits returns the soft limits of pid that cAdvisor reports (the
// open files limit), from /proc/<pid>/limits; unlimited ones are left out,
// as the CRI cannot carry cAdvisor's -1.
func ReadUlimits(proc string, pid int) ([]Ulimit, error) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "limits"))
	if err != nil {
		return nil, err
	}
	var out []Ulimit
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			continue
		}
		if v, err := strconv.ParseUint(fs[0], 10, 64); err == nil {
			out = append(out, Ulimit{Name: "max_open_files", Soft: v})
		}
	}
	return out, nil
}

// DeviceName names the block device major:minor as cAdvisor does
// ("/dev/sda"), from the sysfs at sys; it is "major:minor" when sysfs
// does not know the device.
func DeviceName(sys string, major, minor uint64) string {
	id := strconv.FormatUint(major, 10) + ":" + strconv.FormatUint(minor, 10)
	if b, err := os.ReadFile(filepath.Join(sys, "dev", "block", id, "uevent")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				return "/dev/" + v
			}
		}
	}
	if target, err := os.Readlink(filepath.Join(sys, "dev", "block", id)); err == nil {
		return "/dev/" + filepath.Base(target)
	}
	return id
}
