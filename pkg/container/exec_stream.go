package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
)

// StreamOptions are the client's side of an interactive exec or attach
// session (the CRI streaming server's Exec and Attach).
type StreamOptions struct {
	// Stdin is the client's input; nil attaches none (the process reads
	// /dev/null).
	Stdin io.Reader
	// Stdout and Stderr receive the output; nil discards it. With TTY all
	// output goes to Stdout.
	Stdout, Stderr io.Writer
	// TTY gives an exec'd process a pseudo-terminal. For Attach it is the
	// container's own setting that counts.
	TTY bool
	// Resize delivers terminal sizes; nil when there is no terminal.
	Resize <-chan monitor.Size
}

const (
	// execDrainTimeout bounds how long output is still copied after the
	// exec'd process exited: children it left in the background may hold
	// the pipes or the terminal open indefinitely (the monitor drains a
	// container's output for as long).
	execDrainTimeout = 2 * time.Second
	// consoleTimeout bounds the wait for the runtime's pty master.
	consoleTimeout = 10 * time.Second
	// initialSizeWait is how long a terminal exec waits for the client's
	// first size before it starts the process. Clients send it as soon as
	// the session is up; starting with it set (process.consoleSize) means
	// the process never sees a 0x0 terminal.
	initialSizeWait = 250 * time.Millisecond
)

// Attach connects the streams to the running container's stdio through its
// monitor (see monitor.Attach), so it keeps working across daemon restarts.
// It returns nil once the container has exited and its output was
// delivered, or the session ended.
func (c *Controller) Attach(ctx context.Context, id string, s StreamOptions) error {
	ctr, err := c.Store.Get(id)
	if err != nil {
		return err
	}
	if ctr.Status().State != StateRunning {
		return fmt.Errorf("container %s is not running: %w", ctr.ID, errdefs.ErrFailedPrecondition)
	}
	stdout, stderr := s.Stdout, s.Stderr
	if ctr.Config.GetTty() {
		// A terminal has one output stream; the monitor sends it as stdout.
		stderr = nil
	}
	var stdin io.Reader
	if ctr.Config.GetStdin() {
		stdin = s.Stdin
	}
	return monitor.Attach(ctx, c.MonitorDir(ctr.ID), stdin, stdout, stderr, s.Resize)
}

// ExecStream runs cmd in the running container through the OCI runtime's
// exec, as the container's own process spec (user, environment,
// capabilities) with other arguments, connected to the session's streams,
// and returns its exit code (128+n for signal n). With s.TTY the process
// gets a pseudo-terminal whose size follows s.Resize.
//
// When ctx ends (the client went away) the process is killed and ctx's
// error returned. Output is copied until the process has exited and its
// output ended, or for at most execDrainTimeout after the exit.
func (c *Controller) ExecStream(ctx context.Context, id string, cmd []string, s StreamOptions) (int, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	ctr, err := c.Store.Get(id)
	if err != nil {
		return 0, err
	}
	if ctr.Status().State != StateRunning {
		return 0, fmt.Errorf("container %s is not running: %w", ctr.ID, errdefs.ErrFailedPrecondition)
	}
	rt, err := c.runtimeOf(ctr)
	if err != nil {
		return 0, err
	}
	var initial *monitor.Size
	if s.TTY && s.Resize != nil {
		select {
		case sz, ok := <-s.Resize:
			if ok {
				initial = &sz
			}
		case <-time.After(initialSizeWait):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	procFile, err := c.writeExecProcess(ctr.ID, cmd, s.TTY, initial)
	if err != nil {
		return 0, err
	}
	defer os.Remove(procFile)
	pidFile := procFile + ".pid"
	defer os.Remove(pidFile)

	args := append(rt.GlobalArgs(), "exec", "--process", procFile, "--pid-file", pidFile)
	x := &execSession{ctx: ctx, id: ctr.ID, s: s, pidFile: pidFile}
	if s.TTY {
		return x.runTerminal(rt.Path, args, c.Dir(ctr.ID))
	}
	return x.runPipes(rt.Path, append(args, ctr.ID))
}

// writeExecProcess writes the process.json of an exec with a terminal size
// (execProcess leaves it out).
func (c *Controller) writeExecProcess(id string, cmd []string, tty bool, size *monitor.Size) (string, error) {
	procFile, err := c.execProcess(id, cmd, tty)
	if err != nil || size == nil || size.Width == 0 || size.Height == 0 {
		return procFile, err
	}
	b, err := os.ReadFile(procFile)
	if err == nil {
		var p specs.Process
		if err = json.Unmarshal(b, &p); err == nil {
			p.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
			if b, err = json.Marshal(p); err == nil {
				err = os.WriteFile(procFile, b, 0o600)
			}
		}
	}
	if err != nil {
		os.Remove(procFile)
		return "", err
	}
	return procFile, nil
}

// execSession is one ExecStream call.
type execSession struct {
	ctx     context.Context
	id      string
	s       StreamOptions
	pidFile string
}

// start runs the runtime on a goroutine locked to its OS thread until the
// runtime has been reaped. Pdeathsig fires when the thread that forked the
// child ends, not the process, and Go ends threads that exit while locked
// (netns.Do and netns.New do): an unlocked thread could fork runc and later
// die under a session that lasts hours, killing it.
func (x *execSession) start(cmd *exec.Cmd) (<-chan error, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", x.id, err)
	}
	return waited, nil
}

// wait waits for the runtime to exit. When the session's context ends
// first, the exec'd process is killed (runc exec, its parent, then reaps it
// and exits, so no zombie is left in the container); runc is killed too
// only if it does not follow.
func (x *execSession) wait(cmd *exec.Cmd, waited <-chan error) (err error, cancelled bool) {
	select {
	case err := <-waited:
		return err, false
	case <-x.ctx.Done():
	}
	killExecProcess(x.pidFile)
	select {
	case err = <-waited:
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		err = <-waited
	}
	return err, true
}

// exitCode turns the runtime's exit into the process's exit code: runc
// exec exits with the process's status (128+n for signal n).
func (x *execSession) exitCode(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("exec in container %s: %w", x.id, err)
}

// runPipes runs an exec without a terminal: runc hands its own stdio,
// pipes to the session, to the process.
func (x *execSession) runPipes(path string, args []string) (int, error) {
	cmd := exec.Command(path, args...)
	// The child's ends are closed once it has them, ours at the end.
	var childEnds, ours []*os.File
	defer func() {
		for _, f := range append(childEnds, ours...) {
			_ = f.Close()
		}
	}()
	var stdinW *os.File
	if x.s.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		cmd.Stdin, stdinW = r, w
		childEnds, ours = append(childEnds, r), append(ours, w)
	}
	var outputs []*os.File
	var sinks []io.Writer
	output := func(sink io.Writer) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		childEnds, ours = append(childEnds, w), append(ours, r)
		outputs, sinks = append(outputs, r), append(sinks, sink)
		return w, nil
	}
	if x.s.Stdout != nil {
		w, err := output(x.s.Stdout)
		if err != nil {
			return 0, err
		}
		cmd.Stdout = w
	}
	if x.s.Stderr != nil {
		w, err := output(x.s.Stderr)
		if err != nil {
			return 0, err
		}
		cmd.Stderr = w
	}
	waited, err := x.start(cmd)
	if err != nil {
		return 0, err
	}
	// Only runc (and the process) may hold the write ends: EOF then means
	// that they are done.
	for _, f := range childEnds {
		_ = f.Close()
	}
	childEnds = nil

	if stdinW != nil {
		go func() {
			// Ends at the client's EOF, or with a failed write once the
			// pipe is closed at the end; a Read of the client's stream
			// still blocked then ends when the session's connection closes.
			_, _ = io.Copy(stdinW, x.s.Stdin)
			_ = stdinW.Close()
		}()
	}
	var copies sync.WaitGroup
	for i, r := range outputs {
		copies.Go(func() { _, _ = io.Copy(sinks[i], r) })
	}
	werr, cancelled := x.wait(cmd, waited)
	drain(&copies, outputs)
	if cancelled {
		return 0, x.ctx.Err()
	}
	return x.exitCode(werr)
}

// drain waits for the output copies to reach EOF, at most execDrainTimeout,
// and then closes the read ends so they end.
func drain(copies *sync.WaitGroup, outputs []*os.File) {
	done := make(chan struct{})
	go func() {
		copies.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(execDrainTimeout):
		for _, r := range outputs {
			_ = r.Close()
		}
		// A copy blocked writing to the client ends when the session's
		// connection does; it is not waited for.
	}
}

// runTerminal runs an exec with a pseudo-terminal: runc creates it in the
// container and sends the master over a console socket.
func (x *execSession) runTerminal(path string, args []string, dir string) (int, error) {
	console, err := listenConsole(dir)
	if err != nil {
		return 0, err
	}
	defer console.close()
	cmd := exec.Command(path, append(args, "--console-socket", console.runtimePath, x.id)...)
	// runc's own errors ("executable file not found") go to its stderr,
	// which the process does not share with a terminal: they are passed
	// on to the client after the output.
	runtimeErr := &cappedBuffer{max: 64 << 10}
	cmd.Stderr = runtimeErr
	waited, err := x.start(cmd)
	if err != nil {
		return 0, err
	}

	var master *os.File
	select {
	case r := <-console.result:
		console.taken = true
		if r.err != nil {
			killExecProcess(x.pidFile)
			_ = cmd.Process.Kill()
			<-waited
			return 0, fmt.Errorf("exec in container %s: receiving the terminal: %w", x.id, r.err)
		}
		master = r.f
	case werr := <-waited:
		// runc failed before it made a terminal.
		if msg := bytes.TrimSpace(runtimeErr.Bytes()); len(msg) > 0 {
			return 0, fmt.Errorf("exec in container %s: %s", x.id, msg)
		}
		return x.exitCode(werr)
	case <-x.ctx.Done():
		killExecProcess(x.pidFile)
		_ = cmd.Process.Kill()
		<-waited
		return 0, x.ctx.Err()
	case <-time.After(consoleTimeout):
		_ = cmd.Process.Kill()
		<-waited
		return 0, fmt.Errorf("exec in container %s: no terminal from the runtime after %s: %w", x.id, consoleTimeout, errdefs.ErrUnavailable)
	}
	defer master.Close()

	done := make(chan struct{})
	defer close(done)
	if x.s.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-x.s.Resize:
					if !ok {
						return
					}
					_ = setWinsize(master, sz)
				case <-done:
					return
				}
			}
		}()
	}
	if x.s.Stdin != nil {
		go func() {
			// Writes fail once master is closed at the end; see runPipes
			// for a Read still blocked then.
			if _, err := io.Copy(master, x.s.Stdin); err == nil {
				// The client's EOF: a terminal is not closed for that (it
				// would hang up the process), the EOF character is typed.
				_, _ = master.Write([]byte{4})
			}
		}()
	}
	var copies sync.WaitGroup
	stdout := x.s.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	// Reads end with EIO once every holder of the terminal has closed it.
	copies.Go(func() { _, _ = io.Copy(stdout, master) })
	werr, cancelled := x.wait(cmd, waited)
	drain(&copies, []*os.File{master})
	if cancelled {
		return 0, x.ctx.Err()
	}
	if msg := runtimeErr.Bytes(); len(msg) > 0 && x.s.Stdout != nil {
		_, _ = x.s.Stdout.Write(msg)
	}
	return x.exitCode(werr)
}

// setWinsize sets the terminal's size.
func setWinsize(master *os.File, sz monitor.Size) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	// Control, not Fd: Fd would switch the master to blocking mode and take
	// it out of the netpoller, and a blocked Read could not be ended.
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	}); err != nil {
		return err
	}
	return ierr
}

// consoleSocket receives the pty master that `runc exec --console-socket`
// sends with SCM_RIGHTS.
type consoleSocket struct {
	ln *net.UnixListener
	// runtimePath is the socket's path as the runtime must connect to it.
	runtimePath string
	path        string
	dirFd       int
	result      chan consoleResult
	taken       bool
}

type consoleResult struct {
	f   *os.File
	err error
}

// listenConsole binds a console socket (mode 0600) in dir. Container dirs
// can be deeper than sun_path allows; then the socket is bound and reached
// through /proc/<daemon pid>/fd/<dir fd>, held open until close.
func listenConsole(dir string) (*consoleSocket, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "exec-" + hex.EncodeToString(b[:]) + ".sock"
	c := &consoleSocket{path: filepath.Join(dir, name), dirFd: -1, result: make(chan consoleResult, 1)}
	bindPath, runtimePath := c.path, c.path
	if protocol.NeedsDirFd(dir, name) {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		c.dirFd = fd
		bindPath = protocol.SocketPath(dir, name, 0, fd)
		runtimePath = protocol.SocketPath(dir, name, os.Getpid(), fd)
	}
	c.runtimePath = runtimePath
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindPath, Net: "unix"})
	if err != nil {
		c.closeDirFd()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	// A socket that takes terminals is root's alone (connecting needs write
	// permission; the umask is not changed for that, it is process-wide).
	_ = os.Chmod(bindPath, 0o600)
	// The file is removed by close, not by the listener (which would use
	// the /proc path, gone by then).
	ln.SetUnlinkOnClose(false)
	c.ln = ln
	go func() {
		f, err := c.accept()
		c.result <- consoleResult{f, err}
	}()
	return c, nil
}

func (c *consoleSocket) accept() (*os.File, error) {
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(consoleTimeout))
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
		return nil, errors.New("no descriptor in the console message")
	}
	for _, fd := range fds[1:] {
		_ = unix.Close(fd)
	}
	unix.CloseOnExec(fds[0])
	// Non-blocking before NewFile, so the master joins the netpoller and
	// closing it ends a blocked Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		_ = unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (c *consoleSocket) closeDirFd() {
	if c.dirFd >= 0 {
		_ = unix.Close(c.dirFd)
		c.dirFd = -1
	}
}

// close removes the socket; a master received but not taken is closed.
func (c *consoleSocket) close() {
	_ = c.ln.Close()
	_ = os.Remove(c.path)
	c.closeDirFd()
	if c.taken {
		return
	}
	go func() {
		// With the listener closed accept returns soon, if it has not: an
		// error, or a master nobody will use.
		if r := <-c.result; r.f != nil {
			_ = r.f.Close()
		}
	}()
}
