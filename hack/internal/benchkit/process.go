package benchkit

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Pdeathsig is sent when the thread that forked the child ends, not the
// process; and the Go runtime ends a thread whenever a goroutine that
// locked it returns, as hack/bench's network namespace setup does. So the
// long-lived children are all forked from one thread that never ends.
var (
	spawnOnce sync.Once
	spawnReq  = make(chan func())
)

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for f := range spawnReq {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReq <- func() { errc <- cmd.Start() }
	return <-errc
}

// Process is a long-lived child (registry or daemon) logging to a file.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // of Wait, once done is closed
}

// StartProcess starts bin with its output in logPath and env added to this
// process's environment. The child gets its own process group, so a
// Ctrl-C in the terminal reaches only the benchmark, which then stops its
// children in order; and it is killed if the benchmark dies without
// cleaning up.
func StartProcess(bin string, args []string, logPath string, env ...string) (*Process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file the child's output goes to.
func (p *Process) LogPath() string { return p.logPath }

// Exited says whether the child has ended; a wait for readiness gives up
// when it has.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the child ended (nil for exit status 0); it is valid once
// Exited returns true.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns false if it had to kill.
func (p *Process) Stop(grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// LogTail returns the last lines of the log, for error messages.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	const max = 4096
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
