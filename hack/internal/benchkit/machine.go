package benchkit

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// The facts a report's header gives, so that a reader can tell what the
// figures were measured on and what else the machine was doing.

// MachineInfo describes the machine: "<n> <cpus> (<model>), <x> GiB RAM,
// <kernel>" and then more, comma-separated. Each benchmark names the CPUs
// and adds its own facts as it always has, so reports stay comparable.
func MachineInfo(cpus string, more ...string) string {
	var u unix.Utsname
	kernel := "unknown"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	var si unix.Sysinfo_t
	mem := ""
	if unix.Sysinfo(&si) == nil {
		mem = fmt.Sprintf(", %.1f GiB RAM", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	return strings.Join(append([]string{fmt.Sprintf("%d %s (%s)%s, %s", runtime.NumCPU(), cpus, cpuModel(), mem, kernel)}, more...), ", ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// LoadAvg is the 1-minute load average: other work on the machine skews
// the results, and this shows how much there was.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// FSInfo names the filesystem the work directory (runtime roots, unpack
// floor) is on: tmpfs, ext4 or xfs change the write-bound results.
func FSInfo(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return dir
	}
	names := map[int64]string{unix.TMPFS_MAGIC: "tmpfs", unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs", unix.OVERLAYFS_SUPER_MAGIC: "overlayfs"}
	name, ok := names[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("fs type %#x", st.Type)
	}
	return fmt.Sprintf("%s (%s)", filepath.Dir(dir), name)
}

// CommandLine is how the benchmark was started, shell-quoted; under go run
// the binary is a temporary one, so goRun (e.g. "go run ./hack/bench") is
// shown in its place.
func CommandLine(goRun string) string {
	prog := os.Args[0]
	if strings.Contains(prog, "go-build") {
		prog = goRun
	}
	args := []string{prog}
	for _, a := range os.Args[1:] {
		args = append(args, shellQuote(a))
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
