package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxExecOutput caps what ExecSync captures of each stream (kubelet's limit).
const MaxExecOutput = 16 << 20

// ExecResult is the outcome of a synchronous exec.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in the running container and waits for it, at most
// timeout (0 = no limit). On timeout the process is killed and ExecSync
// returns promptly even if children it left behind still hold its output
// pipes.
func (c *Controller) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	ctr, err := c.Store.Get(id)
	if err != nil {
		return nil, err
	}
	if ctr.Status().State != StateRunning {
		return nil, fmt.Errorf("container %s is not running: %w", ctr.ID, errdefs.ErrFailedPrecondition)
	}
	rt, err := c.runtimeOf(ctr)
	if err != nil {
		return nil, err
	}
	procFile, err := c.execProcess(ctr.ID, cmd, false)
	if err != nil {
		return nil, err
	}
	defer os.Remove(procFile)
	pidFile := procFile + ".pid"
	defer os.Remove(pidFile)

	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	args := append(rt.GlobalArgs(), "exec", "--process", procFile, "--pid-file", pidFile, ctr.ID)
	ec := exec.Command(rt.Path, args...)
	stdout, stderr := &cappedBuffer{max: MaxExecOutput}, &cappedBuffer{max: MaxExecOutput}
	ec.Stdout, ec.Stderr = stdout, stderr
	// Background processes of the exec may keep the pipes open after it
	// exits; do not wait for them.
	ec.WaitDelay = 500 * time.Millisecond
	ec.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ec.Start(); err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", ctr.ID, err)
	}
	done := make(chan error, 1)
	go func() { done <- ec.Wait() }()
	select {
	case err := <-done:
		return execResult(ctr.ID, err, stdout, stderr)
	case <-ctx.Done():
		// Kill the exec'd process itself: runc exec, its parent, then reaps
		// it and exits, so no zombie is left in the container. Only if runc
		// does not follow is it killed too.
		killExecProcess(pidFile)
		// Give runc a moment to reap it (so no zombie is left in the
		// container), but return promptly: the timeout is a promise to
		// kubelet. A goroutine finishes the cleanup.
		finished := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = ec.Process.Kill()
				<-done
			}
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(300 * time.Millisecond):
		}
		return nil, fmt.Errorf("exec in container %s timed out after %s: %w", ctr.ID, timeout, context.DeadlineExceeded)
	}
}

func execResult(id string, err error, stdout, stderr *cappedBuffer) (*ExecResult, error) {
	res := &ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return res, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// runc exec exits with the process's status (128+n for a signal).
		res.ExitCode = int32(ee.ExitCode())
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int32(ws.Signal())
		}
		return res, nil
	}
	return nil, fmt.Errorf("exec in container %s: %w", id, err)
}

// execProcess writes the process.json of an exec: the container's own
// process (user, env, capabilities, no_new_privs, apparmor) with other args.
func (c *Controller) execProcess(id string, cmd []string, tty bool) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir(id), "config.json"))
	if err != nil {
		return "", err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", err
	}
	if spec.Process == nil {
		return "", fmt.Errorf("container %s has no process in its spec", id)
	}
	p := *spec.Process
	p.Args, p.Terminal, p.ConsoleSize = cmd, tty, nil
	pb, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(c.Dir(id), "exec-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(pb); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// cappedBuffer keeps the first max bytes and discards the rest, so a
// chatty exec cannot exhaust memory.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// killExecProcess kills the process runc exec started, waiting briefly for
// its pid file when the timeout struck before runc wrote it.
func killExecProcess(pidFile string) {
	for i := 0; i < 50; i++ {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
