package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/cri-rt/cri-rt/pkg/netns"
)

// dialTimeout bounds a connection attempt to a pod's port.
const dialTimeout = 10 * time.Second

// PortForward connects stream to the port on the pod's loopback, inside the
// pod's network namespace (on the host for a host-network pod), and copies
// both ways until the pod's side closes, the client's connection breaks or
// the client's side ends.
//
// The library calls PortForward with a background context, so the session's
// context is found through the stream's connection (see sessions). Over
// SPDY a client may half-close its side and still read the reply, so its
// EOF only half-closes the pod connection and the session's end closes it;
// over WebSocket a channel reads EOF only when the connection has gone, so
// EOF closes the pod connection.
func (r *Runtime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d is out of range: %w", port, errdefs.ErrInvalidArgument)
	}
	nsPath, err := r.sandboxes.NetNSPath(podSandboxID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	halfClose := false
	if session := r.sessions.of(stream); session != nil {
		halfClose = true
		stop := context.AfterFunc(session, cancel)
		defer stop()
	}
	conn, err := dialLoopback(ctx, nsPath, port)
	if err != nil {
		return fmt.Errorf("connecting to port %d in pod %s: %w", port, podSandboxID, err)
	}
	defer conn.Close()
	// Closing conn ends both copies: the one reading the pod directly, the
	// one writing to it at its next write (its Read of the client's stream
	// ends when the library closes or resets the stream).
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	go func() {
		_, err := io.Copy(conn, stream)
		switch {
		case err != nil:
			// Writing to the pod failed: it closed or reset the
			// connection, which the other copy sees too; what it sent
			// before is still delivered.
		case halfClose:
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		default:
			cancel()
		}
	}()
	_, err = io.Copy(stream, conn)
	if ctx.Err() != nil {
		// The client is gone (over WebSocket, its EOF says so): nobody
		// reads a status, and an error would be logged as unhandled.
		return nil
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// dialLoopback connects to 127.0.0.1:port, or [::1]:port when that is
// refused, in the network namespace at nsPath ("" is the host's).
//
// The socket is created on the calling thread, inside the namespace, and
// stays there when the thread returns. Addresses are literal so that Dial
// neither resolves names nor races two dials on other goroutines, whose
// threads would be in the host's namespace.
func dialLoopback(ctx context.Context, nsPath string, port int32) (net.Conn, error) {
	p := strconv.Itoa(int(port))
	dial := func() (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout}
		c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			if c6, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p)); err6 == nil {
				return c6, nil
			}
		}
		return c, err
	}
	if nsPath == "" {
		return dial()
	}
	var conn net.Conn
	err := netns.Do(nsPath, func() (err error) {
		conn, err = dial()
		return err
	})
	return conn, err
}
