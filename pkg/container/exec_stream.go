package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor"
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
		return x.runTerminal(rt.Path, append(args, ctr.ID), initial)
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
// child ends, not the daemon, and Go ends a thread whose goroutine exits
// while locked to it (netns.New's does, and netns.Do's when it cannot get
// back to the host's namespace): an unlocked thread could fork runc and
// later be ended under a session that lasts hours, killing it.
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

// runTerminal runs an exec with a pseudo-terminal. runc, not detached,
// makes the container's terminal and relays it to its own stdio when that
// is a terminal, and it hands a console socket only to a detached process,
// whose exit status only its reaper learns. So runc gets a terminal of the
// daemon's (ours, in raw mode) and relays; the process's exit code is
// runc's. Sizes set on ours reach the container's when runc gets SIGWINCH.
func (x *execSession) runTerminal(path string, args []string, initial *monitor.Size) (int, error) {
	master, slave, err := openPty()
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: terminal: %w", x.id, err)
	}
	defer master.Close()
	if initial != nil {
		// runc reads it when it starts relaying.
		_ = setWinsize(master, *initial)
	}
	// process.json asks for the terminal (Terminal: true).
	cmd := exec.Command(path, args...)
	// runc's own errors ("executable file not found") go to the terminal,
	// as they go to stderr without one.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	waited, err := x.start(cmd)
	slave.Close()
	if err != nil {
		return 0, err
	}

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
					if setWinsize(master, sz) == nil {
						_ = cmd.Process.Signal(syscall.SIGWINCH)
					}
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
	// Reads end with EIO once runc, the terminal's only other holder, has
	// exited.
	copies.Go(func() { _, _ = io.Copy(stdout, master) })
	werr, cancelled := x.wait(cmd, waited)
	drain(&copies, []*os.File{master})
	if cancelled {
		return 0, x.ctx.Err()
	}
	return x.exitCode(werr)
}

// setWinsize sets a terminal's size.
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

// openPty opens a new pseudo-terminal: a non-blocking master in the
// netpoller (closing it ends a blocked Read) and its slave.
func openPty() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	fail := func(err error) (*os.File, *os.File, error) {
		m.Close()
		return nil, nil, err
	}
	rc, err := m.SyscallConn()
	if err != nil {
		return fail(err)
	}
	var n uint32
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr == nil {
			n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		}
	}); err != nil {
		return fail(err)
	}
	if ierr != nil {
		return fail(ierr)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(err)
	}
	return m, s, nil
}
