package main

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Pdeathsig is sent when the thread that forked the child ends, not the
// process; and the Go runtime ends a thread whenever a goroutine that
// locked it returns, as the floor's network namespace setup does. So the
// long-lived children are all forked from one thread that never ends.
var spawnReq = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread()
		for f := range spawnReq {
			f()
		}
	}()
}

func spawn(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawnReq <- func() { errc <- cmd.Start() }
	return <-errc
}

// process is a child (registry or daemon) logging to a file. Copied from
// hack/pullbench, with an environment for the child.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // of Wait, once done is closed
}

// startProcess starts bin with its output in logPath. The child gets its
// own process group, so a Ctrl-C in the terminal reaches only the
// benchmark, which then stops its children in order; and it is killed if
// the benchmark dies without cleaning up.
func startProcess(bin string, args []string, logPath string, env ...string) (*process, error) {
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
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns false if it had to kill.
func (p *process) stop(grace time.Duration) bool {
	if p.exited() {
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

// logTail returns the last lines of the log, for error messages.
func (p *process) logTail() string {
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
