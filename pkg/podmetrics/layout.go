package podmetrics

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Layout says where a host's cgroup hierarchies, procfs and sysfs are.
type Layout struct {
	// Unified is the cgroup v2 mount when the host uses cgroup v2 only;
	// then V1 is empty.
	Unified string
	// V1 maps each cgroup v1 controller (cpu, cpuacct, memory, pids,
	// blkio, hugetlb) to the mount of its hierarchy.
	V1 map[string]string
	// PSI is a cgroup v2 mount whose cgroups hold the pressure files
	// (cpu.pressure ...): the unified mount, or on a hybrid host the v2
	// hierarchy that runc also places containers in. "" when there is none.
	PSI string
	// Proc is the procfs mount, normally /proc.
	Proc string
	// Sys is the sysfs mount (for block device names), normally /sys.
	Sys string
}

// v1Controllers are the cgroup v1 controllers the collector reads.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb"}

// HostLayout returns the layout of this host, read from
// /proc/self/mountinfo once.
var HostLayout = sync.OnceValue(func() Layout {
	l := Layout{Proc: "/proc", Sys: "/sys"}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		l = ParseMountinfo(f)
		_ = f.Close()
	}
	if l.Unified == "" && len(l.V1) == 0 {
		// No mountinfo: assume the usual places.
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			l.Unified, l.PSI = "/sys/fs/cgroup", "/sys/fs/cgroup"
		} else {
			l.V1 = map[string]string{}
			for _, c := range v1Controllers {
				l.V1[c] = filepath.Join("/sys/fs/cgroup", c)
			}
		}
	}
	return l
})

// ParseMountinfo builds a Layout from the text of /proc/self/mountinfo:
// cgroup v1 mounts give the controllers of their super options, and a
// cgroup2 mount is the unified hierarchy when there are no v1 controllers
// (else it only serves pressure files).
func ParseMountinfo(r io.Reader) Layout {
	l := Layout{Proc: "/proc", Sys: "/sys"}
	var v2 string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mountpoint := unescapeMount(pf[4])
		switch qf[0] {
		case "cgroup2":
			if v2 == "" {
				v2 = mountpoint
			}
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				for _, c := range v1Controllers {
					if opt == c {
						if l.V1 == nil {
							l.V1 = map[string]string{}
						}
						if _, seen := l.V1[c]; !seen {
							l.V1[c] = mountpoint
						}
					}
				}
			}
		}
	}
	l.PSI = v2
	if len(l.V1) == 0 {
		l.Unified = v2
	}
	return l
}

// unescapeMount undoes mountinfo's octal escapes of space, tab, newline
// and backslash.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// dir is the directory of cgroup rel (relative to the hierarchy roots, as
// in an OCI spec's cgroupsPath expanded for systemd) for a v1 controller,
// or in the unified hierarchy. It is "" when the controller is not mounted.
func (l Layout) dir(controller, rel string) string {
	if l.Unified != "" {
		return filepath.Join(l.Unified, rel)
	}
	root, ok := l.V1[controller]
	if !ok {
		return ""
	}
	return filepath.Join(root, rel)
}

// v2 reports whether the layout is cgroup v2 only.
func (l Layout) v2() bool { return l.Unified != "" }
