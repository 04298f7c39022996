// Command cri-rt-monitor watches one container for cri-rt, as conmon does
// for CRI-O: it creates the container with the OCI runtime, writes its
// output to the CRI log file, serves attach and control sockets, reaps the
// container's init and records its exit status in the state dir. It
// outlives the daemon. Package github.com/cri-rt/cri-rt/pkg/monitor starts
// it and documents the process model, the state dir and the wire protocol.
//
// Usage (all paths absolute; the client builds this command line):
//
//	cri-rt-monitor --id ID --bundle DIR --runtime PATH --state-dir DIR
//	    [--runtime-root DIR] [--systemd-cgroup] [--log-path FILE]
//	    [--terminal] [--stdin] [--stdin-once] [--cgroup-dir DIR]
//	    [--max-log-line-size BYTES] [--await-go]
//
// with descriptor 3 the sync pipe to the client (and 4 the go pipe, with
// --await-go). One of these runs per container, so it links only the
// standard library, x/sys and two small packages of its own, keeps a fixed
// handful of goroutines and a low GC target: every kilobyte counts a
// hundred times on a busy node.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
)

// gcPercent bounds the garbage a monitor carries. The output path reuses
// its buffers, so an unattached monitor allocates next to nothing after
// the create and usually never collects at all (a first GC cycle costs some
// 250 KiB of runtime metadata for good). Attach sessions do allocate; with
// 25 the first collection comes at 1 MiB of heap (the runtime's 4 MiB
// minimum scaled by 25%) rather than at 4 MiB.
const gcPercent = 25

// defaultMaxLogLineSize is kubelet's and containerd's default.
const defaultMaxLogLineSize = 16 * 1024

type config struct {
	id, bundle, runtime, runtimeRoot string
	systemdCgroup                    bool
	stateDir, logPath                string
	terminal, stdin, stdinOnce       bool
	cgroupDir                        string
	maxLogLineSize                   int
	awaitGo                          bool
}

func parseFlags(args []string) (*config, error) {
	var c config
	if err := c.parse(args); err != nil {
		return nil, err
	}
	if c.id == "" || c.bundle == "" || c.stateDir == "" || c.runtime == "" {
		return nil, errors.New("--id, --bundle, --runtime and --state-dir are required")
	}
	return &c, nil
}

// parse sets the flags in args, over what c already holds (the go pipe
// brings more flags after the command line's).
func (c *config) parse(args []string) error {
	fs := flag.NewFlagSet("cri-rt-monitor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.id, "id", c.id, "container id")
	fs.StringVar(&c.bundle, "bundle", c.bundle, "OCI bundle dir")
	if c.runtime == "" {
		c.runtime = "runc"
	}
	fs.StringVar(&c.runtime, "runtime", c.runtime, "OCI runtime binary")
	fs.StringVar(&c.runtimeRoot, "runtime-root", c.runtimeRoot, "runtime state root (--root)")
	fs.BoolVar(&c.systemdCgroup, "systemd-cgroup", c.systemdCgroup, "pass --systemd-cgroup to the runtime")
	fs.StringVar(&c.stateDir, "state-dir", c.stateDir, "per-container state dir")
	fs.StringVar(&c.logPath, "log-path", c.logPath, "CRI log file; empty discards output")
	fs.BoolVar(&c.terminal, "terminal", c.terminal, "give the container a pty")
	fs.BoolVar(&c.stdin, "stdin", c.stdin, "keep the container's stdin open for attach")
	fs.BoolVar(&c.stdinOnce, "stdin-once", c.stdinOnce, "close stdin when the first attached client detaches")
	fs.StringVar(&c.cgroupDir, "cgroup-dir", c.cgroupDir, "memory cgroup dir (v1) or unified dir (v2) for OOM detection")
	if c.maxLogLineSize == 0 {
		c.maxLogLineSize = defaultMaxLogLineSize
	}
	fs.IntVar(&c.maxLogLineSize, "max-log-line-size", c.maxLogLineSize, "longest log record; longer lines are split; negative: no limit")
	fs.BoolVar(&c.awaitGo, "await-go", c.awaitGo, "wait for the go pipe (fd 4) before creating the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, p := range []string{c.bundle, c.stateDir, c.logPath, c.cgroupDir} {
		// The monitor runs in "/", and the runtime chdirs into the
		// bundle: relative paths would mean something else to each.
		if p != "" && !filepath.IsAbs(p) {
			return fmt.Errorf("path %q is not absolute", p)
		}
	}
	if c.maxLogLineSize == 0 {
		c.maxLogLineSize = defaultMaxLogLineSize
	}
	return nil
}

func main() {
	// Inherited without FD_CLOEXEC, the sync pipe would otherwise reach
	// the runtime and the container through exec.
	unix.CloseOnExec(protocol.SyncFd)
	syncPipe := os.NewFile(protocol.SyncFd, "sync")
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		sendSync(syncPipe, protocol.SyncMessage{Error: "cri-rt-monitor: " + err.Error()})
		fmt.Fprintln(os.Stderr, "cri-rt-monitor:", err)
		os.Exit(2)
	}
	var goPipe *os.File
	if cfg.awaitGo {
		unix.CloseOnExec(protocol.GoFd)
		goPipe = os.NewFile(protocol.GoFd, "go")
	}
	last := protocol.SyncFd
	if goPipe != nil {
		last = protocol.GoFd
	}
	closeInheritedFds(last)
	os.Exit(run(cfg, syncPipe, goPipe))
}

// closeInheritedFds closes descriptors above last (the sync or go pipe) that were
// inherited by mistake (a daemon library that forgot O_CLOEXEC): a monitor
// lives for as long as its container and must not pin the daemon's files or
// sockets. Descriptors without FD_CLOEXEC are exactly the inherited ones:
// the Go runtime opens all of its own with it.
func closeInheritedFds(last int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= last {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			_ = unix.Close(fd)
		}
	}
}

func sendSync(w *os.File, m protocol.SyncMessage) {
	_, _ = w.Write(append(m.AppendJSON(nil), '\n'))
}

// logf writes a diagnostic to the monitor's own log (its stderr, which run
// points at monitor.log in the state dir).
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// awaitGo blocks until the client says go, with more flags, or abandons
// the creation (EOF: ok false).
func awaitGo(goPipe *os.File) (more []string, ok bool, err error) {
	defer goPipe.Close()
	line, err := bufio.NewReader(goPipe).ReadBytes('\n')
	if len(line) == 0 && err == io.EOF {
		return nil, false, nil
	}
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	if err := json.Unmarshal(line, &more); err != nil {
		return nil, false, fmt.Errorf("bad go message %q: %w", line, err)
	}
	return more, true, nil
}

// run is the monitor proper.
func run(cfg *config, syncPipe, goPipe *os.File) int {
	debug.SetGCPercent(gcPercent)
	if os.Getenv(protocol.AddedGOMAXPROCSEnv) == "1" {
		_ = os.Unsetenv("GOMAXPROCS")
	}
	_ = os.Unsetenv(protocol.AddedGOMAXPROCSEnv)
	m := &monitor{cfg: cfg, stateFd: -1, pidfd: -1,
		sigchld: make(chan os.Signal, 1), term: make(chan os.Signal, 1)}
	// Signals are caught, not ignored: an ignored disposition would be
	// inherited by the runtime and the container, a caught one is reset
	// to the default on exec.
	//  - SIGCHLD drives reaping (see reap).
	//  - SIGTERM (and SIGINT) cancel a create in progress; the daemon
	//    sends it once it knows our pid, so this is set up before we
	//    report it. After the create they are dropped: a monitor that
	//    dies loses its container's output and exit status.
	//  - SIGHUP and SIGPIPE are dropped: the monitor has no terminal and
	//    handles EPIPE where it writes.
	signal.Notify(m.sigchld, unix.SIGCHLD)
	signal.Notify(m.term, unix.SIGTERM, unix.SIGINT)
	signal.Notify(make(chan os.Signal, 1), unix.SIGHUP, unix.SIGPIPE)
	sendSync(syncPipe, protocol.SyncMessage{MonitorPid: os.Getpid()})

	if err := m.init(); err != nil {
		sendSync(syncPipe, protocol.SyncMessage{Error: err.Error()})
		return 1
	}
	if goPipe != nil {
		more, ok, err := awaitGo(goPipe)
		if err != nil {
			sendSync(syncPipe, protocol.SyncMessage{Error: "cri-rt-monitor: go pipe: " + err.Error()})
			return 1
		}
		if !ok {
			return 0 // abandoned before anything was made
		}
		if err := cfg.parse(more); err != nil {
			sendSync(syncPipe, protocol.SyncMessage{Error: "cri-rt-monitor: " + err.Error()})
			return 1
		}
	}
	if err := m.create(); err != nil {
		logf("create failed: %v", err)
		m.cleanupFailed()
		sendSync(syncPipe, protocol.SyncMessage{Error: err.Error()})
		return 1
	}
	sendSync(syncPipe, protocol.SyncMessage{Pid: m.pid})
	// The daemon learns everything else from the state dir; holding the
	// pipe would make the daemon's reader see no EOF, and would tie the
	// monitor to a descriptor of a process that may die.
	_ = syncPipe.Close()

	st := m.wait()
	m.finish(st)
	return 0
}
