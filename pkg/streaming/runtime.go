// Package streaming serves the CRI's streaming sessions, exec, attach and
// port-forward, with k8s.io/cri-streaming, the server kubelet split out and
// containerd and CRI-O use. The Exec, Attach and PortForward RPCs only hand
// out a one-time URL (Server.GetExec and friends); the client (kubelet's
// proxy, crictl) then connects to that URL over SPDY or WebSocket, and the
// library calls Runtime with the session's streams.
//
// Runtime reaches the daemon through two small interfaces: Containers
// (pkg/container runs exec'd processes through the OCI runtime and attaches
// through the container's monitor) and Sandboxes (a pod's network
// namespace), so that it can be tested without containers.
//
// A session ends when the process exits (exec), the container exits
// (attach) or the pod side closes (port-forward), and also when the client
// goes away: Server watches each upgraded connection and cancels the
// session's context when it breaks, which kills an exec'd process and
// closes port-forward connections. Sessions idle for the configured idle
// timeout are closed by the library.
package streaming

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	criremote "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// Containers runs the container side of exec and attach sessions;
// *container.Controller implements it.
type Containers interface {
	// ExecStream runs cmd in a running container with the streams and
	// returns its exit code; it kills the process when ctx ends.
	ExecStream(ctx context.Context, id string, cmd []string, s container.StreamOptions) (int, error)
	// Attach connects the streams to a running container's stdio.
	Attach(ctx context.Context, id string, s container.StreamOptions) error
}

// Sandboxes finds the network namespace of a pod.
type Sandboxes interface {
	// NetNSPath returns the network namespace of a ready pod sandbox, ""
	// for a pod on the host's network.
	NetNSPath(id string) (string, error)
}

// StoreNetNS adapts a sandbox store to Sandboxes.
func StoreNetNS(st *sandbox.Store) Sandboxes { return storeNetNS{st} }

type storeNetNS struct{ st *sandbox.Store }

func (s storeNetNS) NetNSPath(id string) (string, error) {
	sb, err := s.st.Get(id)
	if err != nil {
		return "", err
	}
	if sb.Status().State != sandbox.StateReady {
		return "", fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	return sb.NetNSPath, nil
}

// Runtime implements the cri-streaming Runtime interface.
type Runtime struct {
	containers Containers
	sandboxes  Sandboxes
	// sessions maps an upgraded connection to its context, for port-forward
	// (see PortForward); nil when not served by a Server.
	sessions *sessions
}

// NewRuntime builds a Runtime over the daemon's containers and sandboxes.
func NewRuntime(containers Containers, sandboxes Sandboxes) *Runtime {
	return &Runtime{containers: containers, sandboxes: sandboxes}
}

// Exec runs cmd in the container with the session's streams. A non-zero
// exit code is returned as a utilexec.CodeExitError, which the library
// sends to the client as the command's exit code.
func (r *Runtime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Closing the output streams tells the client that all output has come
	// before the status does.
	defer closeStreams(out, errOut)
	code, err := r.containers.ExecStream(ctx, containerID, cmd, streamOptions(ctx, in, out, errOut, tty, resize))
	if err != nil {
		return sessionError(ctx, err)
	}
	if code != 0 {
		// Returned as is, not wrapped: the library tests the type.
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// Attach connects the session's streams to the running container's stdio.
func (r *Runtime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer closeStreams(out, errOut)
	return sessionError(ctx, r.containers.Attach(ctx, containerID, streamOptions(ctx, in, out, errOut, tty, resize)))
}

// sessionError is what a session reports. A session whose context ended
// has no client left (it went away, the idle timeout closed the
// connection, or the server stopped): nobody reads its status, and the
// library would log the error as unhandled for what is routine.
func sessionError(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		klog.FromContext(ctx).V(4).Info("Streaming session ended with its client", "err", err)
		return nil
	}
	return err
}

// streamOptions converts the library's streams. Interfaces holding nil stay
// nil: a stream the client did not ask for is absent, not a nil writer.
func streamOptions(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize) container.StreamOptions {
	s := container.StreamOptions{TTY: tty, Resize: sizes(ctx, resize)}
	if in != nil {
		s.Stdin = in
	}
	if out != nil {
		s.Stdout = out
	}
	if errOut != nil && !tty {
		s.Stderr = errOut
	}
	return s
}

// sizes relays terminal sizes until ctx ends or the library closes in.
func sizes(ctx context.Context, in <-chan criremote.TerminalSize) <-chan monitor.Size {
	if in == nil {
		return nil
	}
	out := make(chan monitor.Size)
	go func() {
		defer close(out)
		for {
			select {
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- monitor.Size{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func closeStreams(ws ...io.WriteCloser) {
	for _, w := range ws {
		if w != nil {
			_ = w.Close()
		}
	}
}
