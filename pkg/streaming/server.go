package streaming

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criserver "k8s.io/cri-streaming/pkg/streaming"

	"github.com/cri-rt/cri-rt/pkg/config"
)

// Server is the streaming HTTP server: the cri-streaming server behind a
// handler that ties each session to its connection.
type Server struct {
	lib      criserver.Server
	srv      *http.Server
	ln       net.Listener
	tls      bool
	url      *url.URL
	sessions *sessions

	handlers sync.WaitGroup
	mu       sync.Mutex
	conns    map[*watchedConn]struct{}
	stopped  bool
}

// New binds cfg's address and port (0: the kernel chooses) and builds the
// server; Serve serves it. Binding here means the URLs the RPCs return name
// the real port from the start.
func New(cfg config.StreamConfig, rt *Runtime) (*Server, error) {
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("stream TLS certificate: %w", err)
		}
		// HTTP/1.1 only: SPDY and WebSocket upgrade an HTTP/1.1 connection,
		// which HTTP/2 cannot do.
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("stream server: %w", err)
	}
	s := &Server{ln: ln, tls: tlsConfig != nil, sessions: &sessions{byAddr: map[string]context.Context{}}, conns: map[*watchedConn]struct{}{}}
	s.url = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	if s.tls {
		s.url.Scheme = "https"
	}
	c := criserver.DefaultConfig
	c.Addr = ln.Addr().String()
	c.BaseURL = s.url
	c.StreamIdleTimeout = time.Duration(cfg.IdleTimeout)
	c.TLSConfig = tlsConfig
	rt.sessions = s.sessions
	s.lib, err = criserver.NewServer(c, rt)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		// Non-nil and empty: no HTTP/2 over TLS.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	return s, nil
}

// URL is the base of the session URLs.
func (s *Server) URL() string { return s.url.String() }

// Serve serves until Stop.
func (s *Server) Serve() error {
	var err error
	if s.tls {
		err = s.srv.ServeTLS(s.ln, "", "")
	} else {
		err = s.srv.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Stop closes the listener and every session's connection, which ends the
// sessions (exec'd processes are killed), and waits for their handlers to
// return until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Close()
	s.mu.Lock()
	s.stopped = true
	conns := make([]*watchedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("streaming sessions still ending: %w", ctx.Err())
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// GetExec returns the URL of an exec session for a validated request.
func (s *Server) GetExec(r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.lib.GetExec(r)
}

// GetAttach returns the URL of an attach session for a validated request.
func (s *Server) GetAttach(r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.lib.GetAttach(r)
}

// GetPortForward returns the URL of a port-forward session for a validated
// request.
func (s *Server) GetPortForward(r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.lib.GetPortForward(r)
}

// ServeHTTP serves one request with a context that ends when its upgraded
// connection breaks or closes. net/http stops watching a connection once it
// is hijacked, so without this a request's context would outlive a client
// that went away, and so would the exec'd process.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	defer s.handlers.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s.sessions.add(r.RemoteAddr, ctx)
	defer s.sessions.remove(r.RemoteAddr, ctx)
	s.lib.ServeHTTP(&hijackWatcher{ResponseWriter: w, server: s, cancel: cancel}, r.WithContext(ctx))
}

// hijackWatcher hands out watched connections when the library upgrades.
// It has no Unwrap method on purpose: the library unwraps response writers
// before a WebSocket upgrade and would bypass it.
type hijackWatcher struct {
	http.ResponseWriter
	server *Server
	cancel context.CancelFunc
}

// Flush passes flushes on.
func (h *hijackWatcher) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack takes over the connection and watches it.
func (h *hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: conn, r: rw.Reader, cancel: h.cancel, server: h.server}
	if !h.server.track(wc) {
		_ = wc.Close()
	}
	// Reads go through wc, which reads what net/http buffered first.
	return wc, bufio.NewReadWriter(bufio.NewReader(wc), rw.Writer), nil
}

// track registers a session's connection; false once stopped.
func (s *Server) track(c *watchedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *watchedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// watchedConn cancels its session when a read fails (the client closed,
// or the library's idle timeout struck) or it is closed.
type watchedConn struct {
	net.Conn
	r      *bufio.Reader
	cancel context.CancelFunc
	server *Server
}

// Read reads through the reader net/http buffered, which holds what the
// client sent right after its request.
func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

// Close ends the session, forgets the connection and closes it.
func (c *watchedConn) Close() error {
	c.cancel()
	c.server.untrack(c)
	return c.Conn.Close()
}

// sessions maps the remote address of each connection being served to the
// context of its request. A port-forward stream knows its connection's
// remote address (SPDY streams expose it) but the library calls
// PortForward with a background context; this is how it finds its session.
// An address is unique among open connections, and one HTTP/1.1 connection
// serves one request at a time.
type sessions struct {
	mu     sync.Mutex
	byAddr map[string]context.Context
}

func (ss *sessions) add(addr string, ctx context.Context) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.byAddr[addr] = ctx
}

func (ss *sessions) remove(addr string, ctx context.Context) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byAddr[addr] == ctx {
		delete(ss.byAddr, addr)
	}
}

// of returns the session context of the connection a stream belongs to, or
// nil when that is unknown.
func (ss *sessions) of(stream any) context.Context {
	if ss == nil {
		return nil
	}
	ra, ok := stream.(interface{ RemoteAddr() net.Addr })
	if !ok {
		return nil
	}
	addr := ra.RemoteAddr()
	if addr == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byAddr[addr.String()]
}
