package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
	"github.com/cri-rt/cri-rt/pkg/ociruntime/runtimelog"
)

const (
	// drainTimeout bounds how long output is read after the container's
	// init exited: a background process of the container may keep the
	// pipes open forever.
	drainTimeout = 2 * time.Second
	// consoleTimeout bounds the wait for the runtime's pty master after a
	// successful create (it is sent before create returns).
	consoleTimeout = 10 * time.Second
	// readBufSize is the read size of each output stream, as containerd's:
	// larger buffers measurably raise every monitor's resident memory.
	readBufSize = 4 * 1024
)

type monitor struct {
	cfg     *config
	stateFd int // O_PATH descriptor of the state dir, for long socket paths

	log *logFile // nil: output is discarded

	// Output read ends: stdout and stderr pipes, or the pty master
	// (stdout only) with a terminal.
	stdout, stderr *os.File
	hub            *hub
	pumps          int
	pumpDone       chan struct{}

	pid         int  // container init
	pidfd       int  // pidfd of pid, -1 if none
	initIsChild bool // whether we can reap pid

	sigchld, term chan os.Signal
	oomFile       string
	oomBase       int64

	attachLn, ctlLn *net.UnixListener
}

func (m *monitor) statePath(name string) string { return filepath.Join(m.cfg.stateDir, name) }

// socketPath is the path by which this process binds name in the state dir.
func (m *monitor) socketPath(name string) string {
	return protocol.SocketPath(m.cfg.stateDir, name, 0, m.stateFd)
}

// init prepares the process: diagnostics, subreaper and state dir. Failures
// here leave nothing behind but monitor.log. What can wait is done by
// prepare, while the runtime creates the container.
func (m *monitor) init() error {
	fd, err := unix.Open(m.cfg.stateDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cri-rt-monitor: state dir: %w", err)
	}
	m.stateFd = fd
	if f, err := os.OpenFile(m.statePath(protocol.MonitorLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		// Go runtime panics go to fd 2: keep them.
		_ = unix.Dup3(int(f.Fd()), 2, 0)
		_ = f.Close()
	}
	// Do not pin the daemon's working directory's mount.
	_ = os.Chdir("/")
	// The container's init is the runtime's grandchild; when the runtime
	// exits it must be reparented to us so that we can reap it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("cri-rt-monitor: PR_SET_CHILD_SUBREAPER: %w", err)
	}
	m.hub = &hub{clients: map[*client]struct{}{}, stdinOnce: m.cfg.stdinOnce, tty: m.cfg.terminal}
	m.pumpDone = make(chan struct{}, 2)
	return nil
}

func (m *monitor) runtimeCmd(args ...string) *exec.Cmd {
	var a []string
	if m.cfg.runtimeRoot != "" {
		a = append(a, "--root", m.cfg.runtimeRoot)
	}
	if m.cfg.systemdCgroup {
		a = append(a, "--systemd-cgroup")
	}
	a = append(a, "--log", m.statePath(protocol.RuntimeLogFile), "--log-format", "json")
	return exec.Command(m.cfg.runtime, append(a, args...)...)
}

// create runs the runtime's create with the container's stdio, then sets up
// everything the daemon may use once it has the container's pid.
func (m *monitor) create() (err error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()

	// childFiles are the runtime's (and so, without a terminal, the
	// container's) ends; closed once the runtime has exited so that EOF
	// on our ends means the container closed its output.
	var childFiles []*os.File
	defer func() {
		for _, f := range childFiles {
			_ = f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			childFiles = append(childFiles, w)
		}
		return r, w, err
	}

	args := []string{"create", "--bundle", m.cfg.bundle, "--pid-file", m.statePath(protocol.ContainerPidFile)}
	var (
		cmd     *exec.Cmd
		diag    *os.File // where the runtime's own output can be read on failure
		console *consoleReceiver
	)
	if m.cfg.terminal {
		dr, dw, err := pipe()
		if err != nil {
			return err
		}
		diag = dr
		defer dr.Close()
		console, err = listenConsole(m.socketPath(protocol.ConsoleSocket))
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		defer console.close()
		args = append(args, "--console-socket", protocol.SocketPath(m.cfg.stateDir, protocol.ConsoleSocket, os.Getpid(), m.stateFd), m.cfg.id)
		cmd = m.runtimeCmd(args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = null, dw, dw
	} else {
		outR, outW, err := pipe()
		if err != nil {
			return err
		}
		m.stdout = outR
		errR, errW, err := pipe()
		if err != nil {
			return err
		}
		m.stderr = errR
		// The runtime writes its own errors to its stderr, which is the
		// container's: read before the pumps start, they never reach
		// the container log.
		diag = errR
		var in *os.File = null
		if m.cfg.stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return err
			}
			childFiles = append(childFiles, inR)
			in = inR
			m.hub.stdin = inW
		}
		args = append(args, m.cfg.id)
		cmd = m.runtimeCmd(args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = in, outW, errW
	}

	logOffset := runtimelog.Size(m.statePath(protocol.RuntimeLogFile))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.cfg.runtime, err)
	}
	// The runtime takes tens of milliseconds: meanwhile, get ready for
	// the container. A failure here fails the create once the runtime is
	// done (cleanupFailed then deletes the container).
	prepErr := m.prepare()
	// Reaped by reap, not cmd.Wait: a goroutine blocked in wait would
	// cost a thread for good (threads are never given back).
	ws, err := m.reap(cmd.Process.Pid, m.term)
	if err == errCancelled {
		_ = cmd.Process.Kill()
		_, _ = m.reap(cmd.Process.Pid, nil)
		_ = cmd.Process.Release()
		return errors.New("container creation cancelled")
	}
	_ = cmd.Process.Release()
	var werr error
	switch {
	case err != nil:
		werr = err
	case ws.Signaled():
		werr = fmt.Errorf("killed by signal %d", ws.Signal())
	case ws.ExitStatus() != 0:
		werr = fmt.Errorf("exit status %d", ws.ExitStatus())
	}
	for _, f := range childFiles {
		_ = f.Close()
	}
	childFiles = nil
	if werr != nil {
		return errors.New(m.runtimeError(logOffset, diag, werr))
	}
	if prepErr != nil {
		return prepErr
	}

	if console != nil {
		master, err := console.receive(consoleTimeout)
		if err != nil {
			return fmt.Errorf("receive pty master: %w", err)
		}
		m.stdout = master
		if m.cfg.stdin {
			m.hub.stdin = master
		}
		m.hub.master = master
	}

	b, err := os.ReadFile(m.statePath(protocol.ContainerPidFile))
	if err != nil {
		return fmt.Errorf("read container pid: %w", err)
	}
	m.pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || m.pid <= 0 {
		return fmt.Errorf("bad container pid file %q", b)
	}
	m.oomBase, _ = readOOMKills(m.oomFile)
	if fd, err := unix.PidfdOpen(m.pid, 0); err == nil {
		m.pidfd = fd
	}
	// The runtime has exited, so the init has been reparented to us.
	m.initIsChild = parentOf(m.pid) == os.Getpid()

	m.startPumps()
	go m.hub.serve(m.attachLn)
	go m.serveControl(m.ctlLn)
	return nil
}

// prepare does, while the runtime runs, what does not depend on the
// container: the log file, the OOM counter's path, the sockets (served
// once the container exists) and monitor.pid.
func (m *monitor) prepare() (err error) {
	if m.cfg.logPath != "" {
		l, err := openLog(m.cfg.logPath)
		if err != nil {
			return fmt.Errorf("cri-rt-monitor: open log: %w", err)
		}
		m.log = l
	}
	m.oomFile = oomCounterFile(m.cfg.cgroupDir)
	if m.attachLn, err = m.listen(protocol.AttachSocket); err != nil {
		return err
	}
	if m.ctlLn, err = m.listen(protocol.ControlSocket); err != nil {
		return err
	}
	// The daemon trusts a monitor.pid naming a live monitor of this dir
	// only for containers it recorded as created, which this one is not
	// until it reads our report.
	return writeFileAtomic(m.statePath(protocol.MonitorPidFile), []byte(strconv.Itoa(os.Getpid())))
}

// cleanupFailed undoes a failed create: the runtime may have got as far as
// creating the container (or died half-way), so it is deleted by force.
// Nothing else is removed: the daemon owns the state dir and may want
// runtime.log.
func (m *monitor) cleanupFailed() {
	for _, ln := range []*net.UnixListener{m.attachLn, m.ctlLn} {
		if ln != nil {
			_ = ln.Close() // removes the socket file too
		}
	}
	_ = os.Remove(m.statePath(protocol.MonitorPidFile))
	if m.pidfd >= 0 {
		_ = unix.Close(m.pidfd)
	}
	cmd := m.runtimeCmd("delete", "--force", m.cfg.id)
	if out, err := cmd.CombinedOutput(); err != nil {
		logf("%s delete --force: %v: %s", m.cfg.runtime, err, bytes.TrimSpace(out))
	}
	if m.log != nil {
		m.log.close()
	}
}

// runtimeError extracts the runtime's reason for a failed create: the last
// error entry of its JSON log (written after logOffset), else whatever it
// printed, else the exit status.
func (m *monitor) runtimeError(logOffset int64, diag *os.File, werr error) string {
	if msg := runtimelog.LastError(m.statePath(protocol.RuntimeLogFile), logOffset); msg != "" {
		return msg
	}
	if diag != nil {
		// The runtime has exited, but the container's processes may hold
		// the pipe's write end: read only what is already there.
		_ = diag.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 4096)
		n, _ := diag.Read(buf)
		if s := strings.TrimSpace(string(buf[:n])); s != "" {
			return s
		}
	}
	return fmt.Sprintf("%s create: %v", m.cfg.runtime, werr)
}

// parentOf returns the parent pid of pid, 0 if unknown.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...", and comm may contain anything.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func (m *monitor) listen(name string) (*net.UnixListener, error) {
	p := m.socketPath(name)
	_ = os.Remove(p) // a stale socket of an earlier monitor of this dir
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", name, err)
	}
	// Attached clients write to the container's stdin: root only.
	if err := os.Chmod(p, 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return ln, nil
}

// startPumps starts one goroutine per output stream; each reads until EOF
// (or until drain closes its file) and reports on pumpDone.
func (m *monitor) startPumps() {
	start := func(f *os.File, typ byte, stream string) {
		if f == nil {
			return
		}
		m.pumps++
		lw := newLineWriter(m.log, stream, m.cfg.maxLogLineSize)
		go func() {
			buf := make([]byte, readBufSize)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					m.hub.broadcast(typ, buf[:n])
					lw.write(buf[:n])
				}
				// EOF on a pipe; EIO on a pty master whose slave
				// is closed everywhere; ErrClosed from drain.
				if err != nil {
					break
				}
			}
			lw.flush()
			m.pumpDone <- struct{}{}
		}()
	}
	start(m.stdout, protocol.FrameStdout, "stdout")
	start(m.stderr, protocol.FrameStderr, "stderr")
}

var errCancelled = errors.New("cancelled")

// reap reaps children until pid is among them and returns its status,
// waking up on SIGCHLD. Other children are processes reparented to us (we
// are a subreaper): they only need reaping. It fails with ECHILD when there
// are no children at all, and with errCancelled when cancel fires first.
func (m *monitor) reap(pid int, cancel <-chan os.Signal) (unix.WaitStatus, error) {
	for {
		for {
			var ws unix.WaitStatus
			p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return 0, err
			}
			if p == 0 {
				break
			}
			if p == pid {
				return ws, nil
			}
		}
		// The channel holds one pending notification, and every wake-up
		// reaps all that can be reaped: no exit is missed.
		select {
		case <-m.sigchld:
		case <-cancel:
			return 0, errCancelled
		}
	}
}

// wait waits for the container's init to end and returns its status.
func (m *monitor) wait() protocol.ExitStatus {
	if m.initIsChild {
		ws, err := m.reap(m.pid, nil)
		if err == nil {
			st := protocol.ExitStatus{FinishedAt: time.Now().UTC()}
			if ws.Signaled() {
				st.Signal = int(ws.Signal())
				st.ExitCode = 128 + st.Signal
			} else {
				st.ExitCode = ws.ExitStatus()
			}
			return st
		}
		logf("reap container init %d: %v", m.pid, err)
	} else if m.pidfd >= 0 {
		// The runtime left the init to someone else (it was not
		// reparented to us): all we can learn is when it is gone.
		pfd := []unix.PollFd{{Fd: int32(m.pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
				break
			}
		}
	}
	return protocol.ExitStatus{ExitCode: 255, FinishedAt: time.Now().UTC(),
		Reason: "container process disappeared without being reaped by its monitor: exit status unknown"}
}

// finish records the exit: OOM first (the cgroup may go away as soon as the
// daemon learns of the exit), then the rest of the output, then the exit
// file, then attached clients are let go.
func (m *monitor) finish(st protocol.ExitStatus) {
	if n, ok := readOOMKills(m.oomFile); ok && n > m.oomBase {
		st.OOMKilled = true
	}
	m.drain()
	if m.log != nil {
		m.log.close()
	}
	if err := writeFileAtomic(m.statePath(protocol.ExitFile), st.AppendJSON(nil)); err != nil {
		logf("write exit file: %v", err)
	}
	m.hub.shutdownStdin()
	// Closing the listeners unlinks the sockets: an attach after the exit
	// fails at once instead of hanging.
	if m.attachLn != nil {
		_ = m.attachLn.Close()
	}
	if m.ctlLn != nil {
		_ = m.ctlLn.Close()
	}
	m.hub.closeAll(time.Second)
	if m.hub.master != nil {
		_ = m.hub.master.Close()
	}
}

// drain waits for the pumps to reach EOF, at most drainTimeout, then closes
// the streams under them.
func (m *monitor) drain() {
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for left := m.pumps; left > 0; {
		select {
		case <-m.pumpDone:
			left--
		case <-timer.C:
			// Close unblocks the pending Reads (the files are in the
			// netpoller); the pumps then flush and report.
			for _, f := range []*os.File{m.stdout, m.stderr} {
				if f != nil {
					_ = f.Close()
				}
			}
		}
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// No fsync: the state dir lives on tmpfs, and the rename alone makes
	// the content appear whole to readers.
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// oomCounterFile returns the file with the cgroup's oom_kill counter:
// memory.events on cgroup v2, memory.oom_control on v1.
func oomCounterFile(dir string) string {
	if dir == "" {
		return ""
	}
	for _, name := range []string{"memory.events", "memory.oom_control"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	// The cgroup may not exist before the runtime creates it: decide by
	// the hierarchy's type.
	var st unix.Statfs_t
	if unix.Statfs(filepath.Dir(dir), &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return filepath.Join(dir, "memory.events")
	}
	return filepath.Join(dir, "memory.oom_control")
}

// readOOMKills reads the "oom_kill N" line of a counter file.
func readOOMKills(path string) (int64, bool) {
	if path == "" {
		return 0, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// consoleReceiver accepts the runtime's connection on the console socket
// and takes the pty master it sends with SCM_RIGHTS.
type consoleReceiver struct {
	ln    *net.UnixListener
	res   chan consoleResult
	taken bool
}

type consoleResult struct {
	f   *os.File
	err error
}

func listenConsole(path string) (*consoleReceiver, error) {
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	_ = os.Chmod(path, 0o600)
	c := &consoleReceiver{ln: ln, res: make(chan consoleResult, 1)}
	go func() {
		f, err := c.accept()
		c.res <- consoleResult{f, err}
	}()
	return c, nil
}

func (c *consoleReceiver) accept() (*os.File, error) {
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, msg := range msgs {
		if r, err := unix.ParseUnixRights(&msg); err == nil {
			fds = append(fds, r...)
		}
	}
	if len(fds) == 0 {
		return nil, errors.New("no descriptor in console message")
	}
	for _, fd := range fds[1:] {
		_ = unix.Close(fd)
	}
	unix.CloseOnExec(fds[0])
	// Non-blocking before NewFile, so the master joins the netpoller and
	// drain can interrupt its Read by closing it.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		_ = unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// receive returns the master once received, or fails after timeout.
func (c *consoleReceiver) receive(timeout time.Duration) (*os.File, error) {
	select {
	case r := <-c.res:
		c.taken = true
		return r.f, r.err
	case <-time.After(timeout):
		return nil, errors.New("timed out")
	}
}

// close removes the socket; a master received but not taken is closed.
func (c *consoleReceiver) close() {
	_ = c.ln.Close()
	if c.taken {
		return
	}
	// With the listener closed, accept returns soon: an error, or a master
	// the runtime sent just now, which nobody will use.
	go func() {
		if r := <-c.res; r.f != nil {
			_ = r.f.Close()
		}
	}()
}
