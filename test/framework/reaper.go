package framework

import (
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// orphanNames are the processes that end up orphaned under the test
// process: container monitors (they detach from the daemon), and what a
// killed monitor leaves behind. The test never starts them itself, so
// reaping them cannot steal an exit status an exec.Cmd waits for.
var orphanNames = map[string]bool{"cri-rt-monitor": true, "pause": true, "sleep": true, "sh": true, "cat": true, "top": true, "busybox": true}

// InstallReaper makes the test process a child subreaper that reaps the
// orphaned container processes above: on a real node systemd would, but
// this machine's PID 1 does not, and zombies must not pile up.
func InstallReaper() {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return
	}
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	go func() {
		for range ch {
			reapOrphans()
		}
	}()
}

func reapOrphans() {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open || close+2 >= len(s) {
			continue
		}
		name := s[open+1 : close]
		fields := strings.Fields(s[close+2:])
		if len(fields) < 2 || fields[0] != "Z" || !orphanNames[name] {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid != self {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}
