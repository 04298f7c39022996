package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
)

// Size is a terminal size in characters.
type Size struct {
	Width, Height uint16
}

// dial connects to one of the monitor's sockets. A connection refused or a
// socket gone means the monitor has finished (or died): that is told apart
// by the exit file.
func dial(ctx context.Context, stateDir, name string) (*net.UnixConn, error) {
	path := filepath.Join(stateDir, name)
	if protocol.NeedsDirFd(stateDir, name) {
		fd, err := unix.Open(stateDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		path = protocol.SocketPath(stateDir, name, 0, fd)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			if _, xerr := os.Stat(filepath.Join(stateDir, protocol.ExitFile)); xerr == nil {
				return nil, fmt.Errorf("container has exited: %w", errdefs.ErrFailedPrecondition)
			}
			return nil, fmt.Errorf("monitor of %s is not running: %w", stateDir, errdefs.ErrUnavailable)
		}
		return nil, err
	}
	return conn.(*net.UnixConn), nil
}

// control sends one command line on the control socket and reads the answer.
func control(ctx context.Context, stateDir, cmd string) error {
	conn, err := dial(ctx, stateDir, protocol.ControlSocket)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("monitor answer to %q: %w", cmd, err)
	}
	line = strings.TrimSpace(line)
	if line == "ok" {
		return nil
	}
	return fmt.Errorf("monitor: %s", strings.TrimPrefix(line, "error: "))
}

// ReopenLog makes the monitor reopen the container's log file at its path;
// kubelet calls it after renaming the file for rotation. It returns once
// the new file is in use.
func ReopenLog(ctx context.Context, stateDir string) error {
	return control(ctx, stateDir, protocol.CmdReopen)
}

// Resize sets the size of the container's terminal.
func Resize(ctx context.Context, stateDir string, size Size) error {
	return control(ctx, stateDir, protocol.CmdResize+" "+strconv.Itoa(int(size.Width))+" "+strconv.Itoa(int(size.Height)))
}

// Attach connects the streams to the container through its monitor, from
// now on (output is not replayed). A nil stdin attaches no input; a nil
// stdout or stderr discards that stream. Sizes from resize go to the
// container's terminal.
//
// When stdin ends, the monitor is told so: for a stdin_once container that
// closes its stdin and Attach goes on until the output ends; otherwise the
// session ends there. Attach returns nil when the container has exited and
// its output was delivered (or the session ended), ctx's error when ctx
// ends, or the error of a failed write to stdout or stderr. A read from
// stdin still blocked when Attach returns is left to finish on its own.
func Attach(ctx context.Context, stateDir string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan Size) error {
	conn, err := dial(ctx, stateDir, protocol.AttachSocket)
	if err != nil {
		return err
	}
	defer conn.Close()
	stopCtx := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stopCtx()

	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return protocol.WriteFrame(conn, typ, p)
	}
	var flags byte
	if stdin != nil {
		flags |= protocol.HelloStdin
	}
	if err := send(protocol.FrameHello, []byte{flags}); err != nil {
		return err
	}

	done := make(chan struct{})
	defer close(done)
	if stdin != nil {
		go func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if send(protocol.FrameStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					_ = send(protocol.FrameCloseStdin, nil)
					return
				}
			}
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case s, ok := <-resize:
					if !ok {
						return
					}
					if send(protocol.FrameResize, protocol.ResizePayload(s.Width, s.Height)) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}

	buf := make([]byte, 64*1024)
	for {
		typ, p, err := protocol.ReadFrame(conn, buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("attach: %w", err)
		}
		var w io.Writer
		switch typ {
		case protocol.FrameStdout:
			w = stdout
		case protocol.FrameStderr:
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
	}
}
