package oci

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// Host facts the builders depend on. They are variables so that tests can
// pin them; production code reads each once, since none of them changes
// while cri-rt runs.
var (
	// hostCapabilities lists, as "CAP_X" names, the capabilities this
	// kernel supports (up to /proc/sys/kernel/cap_last_cap) that are also
	// in cri-rt's own bounding set. Privileged containers and add "ALL" get
	// exactly these: naming one the kernel does not know, or one cri-rt
	// does not hold itself (a node without CAP_SYS_RESOURCE, say), makes
	// the runtime fail.
	hostCapabilities = sync.OnceValues(func() ([]string, error) {
		caps, err := capability.ListSupported()
		if err != nil {
			return nil, err
		}
		self, err := capability.NewPid2(0)
		if err == nil {
			err = self.Load()
		}
		if err != nil {
			return capNames(caps), nil
		}
		held := caps[:0:0]
		for _, c := range caps {
			if self.Get(capability.BOUNDING, c) {
				held = append(held, c)
			}
		}
		return capNames(held), nil
	})

	// cgroupV2 reports a unified cgroup hierarchy; only there does a
	// container get its own cgroup namespace (as containerd does), which
	// hides the host's cgroup paths from it.
	cgroupV2 = sync.OnceValue(func() bool {
		var st unix.Statfs_t
		return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	})

	// hugetlbAvailable reports the hugetlb controller. kubelet sends a limit
	// for every hugepage size the node has, 0 for sizes the pod did not ask
	// for; without the controller the runtime would fail to apply them.
	hugetlbAvailable = sync.OnceValue(func() bool {
		if cgroupV2() {
			b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
			return err == nil && containsWord(string(b), "hugetlb")
		}
		_, err := os.Stat("/sys/fs/cgroup/hugetlb")
		return err == nil
	})

	// swapAvailable reports whether a swap limit can be written. On cgroup
	// v2 runc silently skips a swap limit that equals the memory limit when
	// the kernel has no swap accounting; on v1 it fails, so the limit is
	// only set when memory.memsw exists.
	swapAvailable = sync.OnceValue(func() bool {
		if cgroupV2() {
			return true
		}
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		return err == nil
	})

	// osHostname gives the node's name, the HOSTNAME of containers in a
	// host-network pod (kubelet sends no hostname for those).
	osHostname = os.Hostname

	// hostDevRoot is the directory a privileged container's devices come from.
	hostDevRoot = "/dev"
)

// knownCapabilities are all capability names cri-rt accepts in a request,
// whether or not this kernel supports them.
var knownCapabilities = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, n := range capNames(capability.ListKnown()) {
		m[n] = true
	}
	return m
})

func capNames(caps []capability.Cap) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// isAbs reports a clean absolute path: the runtime resolves relative paths
// against its own working directory, never what the request meant.
func isAbs(p string) bool {
	return filepath.IsAbs(p)
}
