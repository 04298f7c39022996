package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
)

// BinaryName is the monitor executable's name.
const BinaryName = "cri-rt-monitor"

// DefaultMaxLogLineSize is the log record size limit when Config leaves it 0.
const DefaultMaxLogLineSize = 16 * 1024

// cancelGrace is how long a cancelled Create waits for the monitor to undo
// the creation itself before killing it.
const cancelGrace = 10 * time.Second

// Config describes one container to monitor.
type Config struct {
	// ID is the runtime's container id.
	ID string
	// Bundle is the OCI bundle dir (config.json and rootfs).
	Bundle string
	// Runtime is the OCI runtime binary (a path, or a name looked up in
	// PATH by the monitor).
	Runtime string
	// RuntimeRoot is passed as the runtime's --root, if set.
	RuntimeRoot string
	// SystemdCgroup passes --systemd-cgroup to the runtime.
	SystemdCgroup bool
	// StateDir is the container's own dir for the monitor's files
	// (created if missing).
	StateDir string
	// LogPath is the CRI log file; empty discards output (pause).
	LogPath string
	// Terminal gives the container a pty.
	Terminal bool
	// Stdin keeps the container's stdin open for attach; StdinOnce closes
	// it when the first client that attached its stdin detaches.
	Stdin, StdinOnce bool
	// CgroupDir is the container's memory cgroup dir (v1) or unified dir
	// (v2), for OOM detection; empty: no detection.
	CgroupDir string
	// MaxLogLineSize is the longest log record; 0 means
	// DefaultMaxLogLineSize, negative means no limit.
	MaxLogLineSize int
}

// Info identifies a running monitor and its container.
type Info struct {
	MonitorPid   int
	ContainerPid int
}

// Exit is a container's recorded end.
type Exit struct {
	// ExitCode is the exit status, 128+Signal when killed by a signal, or
	// 255 when the monitor could not learn it (see Reason).
	ExitCode int
	// Signal is the signal that killed the init, 0 if it exited.
	Signal     int
	OOMKilled  bool
	FinishedAt time.Time
	// Reason explains a status the monitor could not observe.
	Reason string
}

func (c Config) args() ([]string, error) {
	if c.ID == "" || c.Bundle == "" || c.Runtime == "" || c.StateDir == "" {
		return nil, fmt.Errorf("monitor config needs ID, Bundle, Runtime and StateDir: %w", errdefs.ErrInvalidArgument)
	}
	abs := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		return filepath.Abs(p)
	}
	var err error
	for _, p := range []*string{&c.Bundle, &c.StateDir, &c.LogPath, &c.CgroupDir} {
		if *p, err = abs(*p); err != nil {
			return nil, err
		}
	}
	a := []string{"--id", c.ID, "--bundle", c.Bundle, "--runtime", c.Runtime, "--state-dir", c.StateDir}
	if c.RuntimeRoot != "" {
		a = append(a, "--runtime-root", c.RuntimeRoot)
	}
	if c.SystemdCgroup {
		a = append(a, "--systemd-cgroup")
	}
	if c.LogPath != "" {
		a = append(a, "--log-path", c.LogPath)
	}
	if c.Terminal {
		a = append(a, "--terminal")
	}
	if c.Stdin {
		a = append(a, "--stdin")
	}
	if c.StdinOnce {
		a = append(a, "--stdin-once")
	}
	if c.CgroupDir != "" {
		a = append(a, "--cgroup-dir", c.CgroupDir)
	}
	if c.MaxLogLineSize != 0 {
		a = append(a, "--max-log-line-size", strconv.Itoa(c.MaxLogLineSize))
	}
	return a, nil
}

type syncResult struct {
	msg protocol.SyncMessage
	err error // io.EOF or a read/decode error; ends the stream
}

// Create starts a monitor for a container whose bundle exists and returns
// once the runtime has created it (its pid is known; the caller runs the
// runtime's start) or failed, with the runtime's message in the error.
//
// When ctx ends first the monitor is told to cancel (it kills the runtime and
// deletes the container); if it does not finish within 10 seconds, its
// process group is killed and the container deleted from here.
func Create(ctx context.Context, monitorBinary string, cfg Config) (*Info, error) {
	p, err := start(monitorBinary, cfg, false)
	if err != nil {
		return nil, err
	}
	return p.wait(ctx)
}

// Pending is a monitor started ahead of its container's bundle (Start):
// it gets its process and runtime ready while the caller prepares the
// bundle, then creates the container on Go. Exactly one of Go and Abandon
// must be called.
type Pending struct {
	cfg      Config
	cmd      *exec.Cmd
	goPipe   *os.File // write end; closed by Go and Abandon
	results  chan syncResult
	syncPipe *os.File

	reapOnce sync.Once
	reapErr  error
}

// Start starts a monitor that waits, before it creates the container, for
// Go. cfg's bundle need not exist yet; flags only known once it does (such
// as the cgroup dir) are given to Go.
func Start(monitorBinary string, cfg Config) (*Pending, error) {
	return start(monitorBinary, cfg, true)
}

func start(monitorBinary string, cfg Config, awaitGo bool) (*Pending, error) {
	args, err := cfg.args()
	if err != nil {
		return nil, err
	}
	if awaitGo {
		args = append(args, "--await-go")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p := &Pending{cfg: cfg, syncPipe: r, results: make(chan syncResult, 4)}
	cmd := exec.Command(monitorBinary, args...)
	// Stdin, Stdout and Stderr stay nil: /dev/null. Only the sync pipe
	// (and the go pipe) are passed; everything else of ours is O_CLOEXEC.
	cmd.ExtraFiles = []*os.File{w}
	var goR *os.File
	if awaitGo {
		goR, p.goPipe, err = os.Pipe()
		if err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, goR)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if os.Getenv("GOMAXPROCS") == "" {
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", protocol.AddedGOMAXPROCSEnv+"=1")
	}
	err = cmd.Start()
	_ = w.Close()
	if goR != nil {
		_ = goR.Close()
	}
	if err != nil {
		r.Close()
		if p.goPipe != nil {
			p.goPipe.Close()
		}
		return nil, fmt.Errorf("start %s: %w", monitorBinary, err)
	}
	p.cmd = cmd

	go func() {
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				var m protocol.SyncMessage
				if jerr := json.Unmarshal(line, &m); jerr != nil {
					p.results <- syncResult{err: fmt.Errorf("bad message from monitor %q: %w", line, jerr)}
					return
				}
				p.results <- syncResult{msg: m}
			}
			if err != nil {
				p.results <- syncResult{err: err}
				return
			}
		}
	}()
	return p, nil
}

// Go tells the monitor to create the container, with more flags for it
// (e.g. "--cgroup-dir", dir), and waits as Create does.
func (p *Pending) Go(ctx context.Context, more ...string) (*Info, error) {
	b, _ := json.Marshal(append([]string{}, more...))
	// A failed write means the monitor is gone; wait reports why.
	_, _ = p.goPipe.Write(append(b, '\n'))
	_ = p.goPipe.Close()
	return p.wait(ctx)
}

// Abandon tells the monitor that the container will not be created, and
// waits (up to cancelGrace) for it to exit; it has made nothing.
func (p *Pending) Abandon() {
	_ = p.goPipe.Close()
	defer p.syncPipe.Close()
	defer func() { _ = p.reap() }()
	timeout := time.After(cancelGrace)
	for {
		select {
		case res := <-p.results:
			if res.err != nil {
				return // the monitor has exited: the sync pipe is closed
			}
		case <-timeout:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			return
		}
	}
}

// reap waits for a monitor that has ended, or is ending, without having
// created a container. (One that has created its container lives as long
// as it: its end is the Watcher's business, which reaps it too.) It returns
// the monitor's exit, and may be called more than once.
func (p *Pending) reap() error {
	p.reapOnce.Do(func() { p.reapErr = p.cmd.Wait() })
	return p.reapErr
}

// wait reads the monitor's reports until the container is created or not.
func (p *Pending) wait(ctx context.Context) (_ *Info, retErr error) {
	defer p.syncPipe.Close()
	defer func() {
		if retErr != nil {
			_ = p.reap()
		}
	}()
	cfg := p.cfg
	var (
		info      Info
		done      = ctx.Done()
		cancelled bool
		killTimer <-chan time.Time
	)
	for {
		select {
		case res := <-p.results:
			if res.err != nil {
				// The monitor died without a verdict; the container
				// may exist half-made.
				if info.MonitorPid != 0 {
					_ = syscall.Kill(-info.MonitorPid, syscall.SIGKILL)
				}
				deleteContainer(cfg)
				msg := "monitor exited without reporting"
				if serr := p.reap(); serr != nil {
					msg += " (" + serr.Error() + ")"
				}
				if tail := lastLine(filepath.Join(cfg.StateDir, protocol.MonitorLogFile)); tail != "" {
					msg += ": " + tail
				}
				return nil, fmt.Errorf("create container %s: %s", cfg.ID, msg)
			}
			m := res.msg
			if m.MonitorPid != 0 {
				info.MonitorPid = m.MonitorPid
				if cancelled {
					_ = syscall.Kill(info.MonitorPid, syscall.SIGTERM)
				}
			}
			if m.Error != "" {
				if cancelled {
					return nil, fmt.Errorf("create container %s: %s: %w", cfg.ID, m.Error, ctx.Err())
				}
				return nil, fmt.Errorf("create container %s: %s", cfg.ID, m.Error)
			}
			if m.Pid != 0 {
				// Even when cancelled meanwhile: the container
				// exists and its monitor (which ignores SIGTERM
				// once created) watches it.
				info.ContainerPid = m.Pid
				return &info, nil
			}
		case <-done:
			done, cancelled = nil, true
			if info.MonitorPid != 0 {
				_ = syscall.Kill(info.MonitorPid, syscall.SIGTERM)
			}
			killTimer = time.After(cancelGrace)
		case <-killTimer:
			if info.MonitorPid != 0 {
				// The monitor's process group holds the runtime.
				_ = syscall.Kill(-info.MonitorPid, syscall.SIGKILL)
			}
			_ = p.cmd.Process.Kill()
			deleteContainer(cfg)
			return nil, fmt.Errorf("create container %s: %w", cfg.ID, ctx.Err())
		}
	}
}

// deleteContainer is the daemon-side fallback for a monitor that could not
// clean up after itself.
func deleteContainer(cfg Config) {
	var a []string
	if cfg.RuntimeRoot != "" {
		a = append(a, "--root", cfg.RuntimeRoot)
	}
	if cfg.SystemdCgroup {
		a = append(a, "--systemd-cgroup")
	}
	a = append(a, "delete", "--force", cfg.ID)
	_ = exec.Command(cfg.Runtime, a...).Run()
}

func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// ReadExit returns the container's recorded exit, or an error wrapping
// errdefs.ErrNotFound while there is none (the container runs, or its
// monitor died before it could write one).
func ReadExit(stateDir string) (*Exit, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, protocol.ExitFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no exit recorded in %s: %w", stateDir, errdefs.ErrNotFound)
		}
		return nil, err
	}
	var st protocol.ExitStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("exit file of %s: %w", stateDir, err)
	}
	return &Exit{ExitCode: st.ExitCode, Signal: st.Signal, OOMKilled: st.OOMKilled, FinishedAt: st.FinishedAt, Reason: st.Reason}, nil
}

// ReadInfo reads the pids of a created container's monitor and init from
// the state dir, to find them again after a daemon restart. The pids may be
// stale: see Running.
func ReadInfo(stateDir string) (*Info, error) {
	mp, err := readPid(filepath.Join(stateDir, protocol.MonitorPidFile))
	if err != nil {
		return nil, err
	}
	cp, err := readPid(filepath.Join(stateDir, protocol.ContainerPidFile))
	if err != nil {
		return nil, err
	}
	return &Info{MonitorPid: mp, ContainerPid: cp}, nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("%s: %w", path, errdefs.ErrNotFound)
		}
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, b)
	}
	return pid, nil
}

// Running tells whether the monitor recorded in stateDir still runs. It
// checks the process's command line too, since after a reboot or a long
// time its pid may belong to another process.
func Running(stateDir string) bool {
	pid, err := readPid(filepath.Join(stateDir, protocol.MonitorPidFile))
	if err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false // gone, or a zombie (whose cmdline is empty)
	}
	abs, _ := filepath.Abs(stateDir)
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--state-dir" && args[i+1] == abs {
			return true
		}
	}
	return false
}

// FindBinary locates cri-rt-monitor: next to the running executable, then
// in PATH.
func FindBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), BinaryName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(BinaryName)
	if err != nil {
		return "", fmt.Errorf("%s not found next to the daemon or in PATH: %w", BinaryName, errdefs.ErrNotFound)
	}
	return p, nil
}
