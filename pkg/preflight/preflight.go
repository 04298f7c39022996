// Package preflight checks that a node can run cri-rt and kubelet's pods:
// OCI runtimes, CNI plugins and config, overlayfs on the root filesystem,
// cgroups and the cgroup driver, forwarding and bridge netfilter, free disk,
// and whether the daemon answers on its socket. It backs `cri-rt check`.
//
// Every check produces one Result: a status, what was found and, when the
// status is not OK, the command or setting that fixes it. Checks look at the
// real system (they mount an overlay, run the runtime binaries, dial the
// socket) rather than guessing from package lists, because the question an
// operator asks is "will pods start here", and only trying answers it.
package preflight

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cri-rt/cri-rt/pkg/config"
)

// Status is the outcome of one check.
type Status string

// The statuses, from good to bad. WARN means pods can run but something
// will bite later (or only some pods); FAIL means pods or the daemon will
// not work, and makes `cri-rt check` exit non-zero.
const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Result is one line of the report.
type Result struct {
	Status Status
	// Check names what was checked, e.g. "runtime runc" or "overlayfs".
	Check string
	// Detail says what was found.
	Detail string
	// Fix says what to do; empty for OK results.
	Fix string
}

// Options select and parameterise the checks.
type Options struct {
	// Config is the effective daemon configuration.
	Config *config.Config
	// KubeletConfig is the path of kubelet's KubeletConfiguration file;
	// empty skips the comparison with kubelet.
	KubeletConfig string
	// SocketOnly runs only the socket check (for readiness probes: fast,
	// and free of side effects such as the overlay test mount).
	SocketOnly bool
	// Timeout bounds each external command and RPC; zero means 5 s.
	Timeout time.Duration

	// The system paths below exist so that tests can point the checks at
	// fixtures; empty means the real location.
	ProcSys    string // /proc/sys
	CgroupRoot string // /sys/fs/cgroup
	// SystemdDir exists when systemd is PID 1 (sd_booted(3) tests it).
	SystemdDir string // /run/systemd/system
}

func (o *Options) defaults() {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ProcSys == "" {
		o.ProcSys = "/proc/sys"
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.SystemdDir == "" {
		o.SystemdDir = "/run/systemd/system"
	}
}

// Run performs the checks in a fixed order (the order of the report).
func Run(ctx context.Context, opts Options) []Result {
	opts.defaults()
	if opts.SocketOnly {
		return checkSocket(ctx, &opts, false)
	}
	var rs []Result
	rs = append(rs, checkRuntimes(ctx, &opts)...)
	rs = append(rs, checkMonitor())
	rs = append(rs, checkCNIPlugins(&opts), checkCNIConfig(&opts))
	rs = append(rs, checkOverlay(&opts))
	rs = append(rs, checkCgroups(&opts)...)
	rs = append(rs, checkKubelet(&opts)...)
	rs = append(rs, checkIPForward(&opts), checkBrNetfilter(&opts))
	rs = append(rs, checkDisk(&opts))
	rs = append(rs, checkSocket(ctx, &opts, true)...)
	return rs
}

// Failed returns the number of FAIL results.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

// Print writes one line per result: status, check, detail and, for WARN
// and FAIL, the fix in parentheses. Columns are aligned so a glance down
// the first one finds the problems.
func Print(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rs {
		line := fmt.Sprintf("%s\t%s\t%s", r.Status, r.Check, oneLine(r.Detail))
		if r.Fix != "" && r.Status != OK {
			line += "  (fix: " + oneLine(r.Fix) + ")"
		}
		if _, err := fmt.Fprintln(tw, line); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// oneLine keeps the report one line per check even when a detail quotes
// multi-line command output.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\t", " ")), " ")
}

func ok(check, format string, args ...any) Result {
	return Result{Status: OK, Check: check, Detail: fmt.Sprintf(format, args...)}
}

func warn(check, fix, format string, args ...any) Result {
	return Result{Status: Warn, Check: check, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

func fail(check, fix, format string, args ...any) Result {
	return Result{Status: Fail, Check: check, Detail: fmt.Sprintf(format, args...), Fix: fix}
}
