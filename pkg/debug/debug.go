// Package debug serves Go's profiler (net/http/pprof) for the daemon, as
// containerd's [debug] address does: CPU, heap, goroutine, mutex and block
// profiles under /debug/pprof/, read with `go tool pprof`.
//
// It is off unless configured. A unix socket (an absolute path) is created
// 0600, so only root can profile; a host:port is for a loopback address on
// a test machine.
package debug

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// Server serves the profiles.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	path string // the socket file, "" for TCP
}

// Listen serves the profiles on addr: a unix socket path or host:port.
func Listen(addr string) (*Server, error) {
	s := &Server{}
	var err error
	if filepath.IsAbs(addr) {
		if err := os.MkdirAll(filepath.Dir(addr), 0o711); err != nil {
			return nil, err
		}
		// A socket left by a daemon that was killed: it holds nothing.
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(addr)
		}
		s.ln, err = net.Listen("unix", addr)
		if err == nil {
			s.path = addr
			if err = os.Chmod(addr, 0o600); err != nil {
				_ = s.ln.Close()
			}
		}
	} else {
		s.ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("debug address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace streams for as long as its
	// seconds parameter asks.
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Debug server stopped")
		}
	}()
	return s, nil
}

// Addr is the bound address: the socket path, or host:port.
func (s *Server) Addr() string {
	if s.path != "" {
		return s.path
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server and removes its socket.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if s.path != "" {
		_ = os.Remove(s.path)
	}
	return err
}
