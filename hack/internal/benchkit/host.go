package benchkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SyncDisks writes back dirty pages so that a measurement does not pay for
// the previous one's writes.
func SyncDisks() { unix.Sync() }

// Mkdir makes parent/name and returns its path. An error is not returned:
// the first use of the directory reports it.
func Mkdir(parent, name string) string {
	p := filepath.Join(parent, name)
	_ = os.MkdirAll(p, 0o755)
	return p
}

// MountsBelow lists the mount points at or below dir, in mount order.
func MountsBelow(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			targets = append(targets, f[4])
		}
	}
	return targets
}

// UnmountBelow detaches every mount at or below dir, deepest first, so
// that removing a work or daemon directory cannot fail on a mount or
// leave one behind.
func UnmountBelow(dir string) error {
	targets := MountsBelow(dir)
	var errs []error
	for i := len(targets) - 1; i >= 0; i-- {
		if err := unix.Unmount(targets[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", targets[i], err))
		}
	}
	return errors.Join(errs...)
}

// ResetPeakRSS resets pid's peak RSS (clear_refs 5), so that the next
// PeakRSS is that of what follows, not of the startup or an earlier pull.
func ResetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// PeakRSS returns VmHWM of pid in KiB, or 0 when unknown.
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
