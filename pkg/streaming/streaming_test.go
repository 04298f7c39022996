package streaming

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criremote "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/monitor"
)

// fakeContainers runs a few commands in the test process.
type fakeContainers struct {
	cancelled atomic.Int32
	attached  chan container.StreamOptions
}

func (f *fakeContainers) ExecStream(ctx context.Context, id string, cmd []string, s container.StreamOptions) (int, error) {
	if id != "ctr" {
		return 0, fmt.Errorf("no container %q", id)
	}
	switch cmd[0] {
	case "echo": // echo OUT ERR CODE: print and exit
		fmt.Fprint(s.Stdout, cmd[1])
		if s.Stderr != nil {
			fmt.Fprint(s.Stderr, cmd[2])
		}
		code, _ := strconv.Atoi(cmd[3])
		return code, nil
	case "cat":
		_, err := io.Copy(s.Stdout, s.Stdin)
		return 0, err
	case "size": // print the first size after the initial one
		n := 0
		for sz := range s.Resize {
			if n++; n == 2 {
				fmt.Fprintf(s.Stdout, "%d %d\n", sz.Height, sz.Width)
				return 0, nil
			}
		}
		return 1, nil
	case "block":
		fmt.Fprintln(s.Stdout, "started")
		<-ctx.Done()
		f.cancelled.Add(1)
		return 0, ctx.Err()
	}
	return 127, nil
}

func (f *fakeContainers) Attach(ctx context.Context, id string, s container.StreamOptions) error {
	f.attached <- s
	fmt.Fprintln(s.Stdout, "attached")
	_, err := io.Copy(s.Stdout, s.Stdin)
	return err
}

type hostNetNS struct{}

func (hostNetNS) NetNSPath(id string) (string, error) {
	if id != "pod" {
		return "", errors.New("no such pod")
	}
	return "", nil
}

func newTestServer(t *testing.T, idle time.Duration) (*Server, *fakeContainers) {
	t.Helper()
	f := &fakeContainers{attached: make(chan container.StreamOptions, 10)}
	s, err := New(config.StreamConfig{Address: "127.0.0.1", IdleTimeout: config.Duration(idle)}, NewRuntime(f, hostNetNS{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s, f
}

func execURL(t *testing.T, s *Server, req *runtimeapi.ExecRequest) *url.URL {
	t.Helper()
	req.ContainerId = "ctr"
	resp, err := s.GetExec(req)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func spdyExec(t *testing.T, u *url.URL, opts remotecommand.StreamOptions) error {
	t.Helper()
	ex, err := remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return ex.StreamWithContext(ctx, opts)
}

func wantExit(t *testing.T, err error, code int) {
	t.Helper()
	// client-go has its own CodeExitError type.
	var ee interface{ ExitStatus() int }
	if code == 0 {
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		return
	}
	if !errors.As(err, &ee) || ee.ExitStatus() != code {
		t.Fatalf("exec: want exit code %d, got %v", code, err)
	}
}

func TestExecOutputAndExitCode(t *testing.T) {
	s, _ := newTestServer(t, time.Minute)
	for _, tc := range []struct {
		name string
		run  func(u *url.URL, opts remotecommand.StreamOptions) error
	}{
		{"spdy", func(u *url.URL, opts remotecommand.StreamOptions) error { return spdyExec(t, u, opts) }},
		{"websocket", func(u *url.URL, opts remotecommand.StreamOptions) error {
			ex, err := remotecommand.NewWebSocketExecutorForProtocols(&rest.Config{}, "GET", u.String(), "v4.channel.k8s.io")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return ex.StreamWithContext(ctx, opts)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, code := range []int{0, 3} {
				var out, errb bytes.Buffer
				u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"echo", "out", "err", strconv.Itoa(code)}, Stdout: true, Stderr: true})
				err := tc.run(u, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb})
				wantExit(t, err, code)
				if out.String() != "out" || errb.String() != "err" {
					t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
				}
			}
			if tc.name == "websocket" {
				// The v4 WebSocket protocol cannot close stdin alone, so
				// cat would not end.
				return
			}
			var out bytes.Buffer
			u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"cat"}, Stdin: true, Stdout: true})
			wantExit(t, tc.run(u, remotecommand.StreamOptions{Stdin: strings.NewReader("some input"), Stdout: &out}), 0)
			if out.String() != "some input" {
				t.Fatalf("cat: %q", out.String())
			}
		})
	}
}

// sizeQueue hands out sizes, then blocks until done.
type sizeQueue struct {
	sizes []remotecommand.TerminalSize
	done  chan struct{}
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	if len(q.sizes) == 0 {
		<-q.done
		return nil
	}
	sz := q.sizes[0]
	q.sizes = q.sizes[1:]
	return &sz
}

func TestExecTTYResize(t *testing.T) {
	s, _ := newTestServer(t, time.Minute)
	u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"size"}, Stdout: true, Tty: true})
	q := &sizeQueue{sizes: []remotecommand.TerminalSize{{Width: 80, Height: 24}, {Width: 132, Height: 43}}, done: make(chan struct{})}
	defer close(q.done)
	var out bytes.Buffer
	wantExit(t, spdyExec(t, u, remotecommand.StreamOptions{Stdout: &out, Tty: true, TerminalSizeQueue: q}), 0)
	if out.String() != "43 132\n" {
		t.Fatalf("size: %q", out.String())
	}
}

// TestExecClientGoesAway checks that a client that disconnects mid-session
// cancels the session's context (which kills the process) over both
// protocols, without any output or input pending.
func TestExecClientGoesAway(t *testing.T) {
	s, f := newTestServer(t, time.Minute)
	for i, proto := range []string{"spdy", "websocket"} {
		u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"block"}, Stdout: true})
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		go func() {
			// Cancel once the session runs.
			buf := make([]byte, 8)
			_, _ = pr.Read(buf)
			cancel()
			_, _ = io.Copy(io.Discard, pr)
		}()
		var ex remotecommand.Executor
		var err error
		if proto == "spdy" {
			ex, err = remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
		} else {
			ex, err = remotecommand.NewWebSocketExecutorForProtocols(&rest.Config{}, "GET", u.String(), "v4.channel.k8s.io")
		}
		if err != nil {
			t.Fatal(err)
		}
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: pw})
		if !errors.Is(err, context.Canceled) {
			t.Logf("%s: client returned %v", proto, err)
		}
		waitCancelled(t, f, i+1)
		pw.Close()
	}
}

// waitCancelled waits until n sessions have seen their context end.
func waitCancelled(t *testing.T, f *fakeContainers, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.cancelled.Load() != int32(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions cancelled, want %d", f.cancelled.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopEndsSessions(t *testing.T) {
	f := &fakeContainers{}
	s, err := New(config.StreamConfig{Address: "127.0.0.1"}, NewRuntime(f, hostNetNS{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"block"}, Stdout: true})
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- spdyExec(t, u, remotecommand.StreamOptions{Stdout: pw}) }()
	_, _ = pr.Read(make([]byte, 8))
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitCancelled(t, f, 1)
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("client still connected after Stop")
	}
}

func TestIdleTimeout(t *testing.T) {
	s, f := newTestServer(t, 300*time.Millisecond)
	u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"block"}, Stdout: true})
	start := time.Now()
	_ = spdyExec(t, u, remotecommand.StreamOptions{Stdout: io.Discard})
	waitCancelled(t, f, 1)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle session lasted %s", d)
	}
}

func TestAttach(t *testing.T) {
	s, f := newTestServer(t, time.Minute)
	resp, err := s.GetAttach(&runtimeapi.AttachRequest{ContainerId: "ctr", Stdin: true, Stdout: true, Tty: true})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(resp.Url)
	var out bytes.Buffer
	wantExit(t, spdyExec(t, u, remotecommand.StreamOptions{Stdin: strings.NewReader("typed\n"), Stdout: &out, Tty: true}), 0)
	if out.String() != "attached\ntyped\n" {
		t.Fatalf("attach output %q", out.String())
	}
	if so := <-f.attached; !so.TTY || so.Stderr != nil {
		t.Fatalf("attach options %+v", so)
	}
}

// echoServer accepts connections on the host's loopback and answers each
// line with "echo: line".
func echoServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				fmt.Fprintf(c, "echo: %s", b)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestPortForward(t *testing.T) {
	s, _ := newTestServer(t, time.Minute)
	port := echoServer(t)
	resp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "pod"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(resp.Url)
	tr, up, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(up, &http.Client{Transport: tr}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	<-ready
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local)))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", local, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "hello %d", i)
			_ = c.(*net.TCPConn).CloseWrite()
			b, err := io.ReadAll(c)
			if err != nil || string(b) != fmt.Sprintf("echo: hello %d", i) {
				errs <- fmt.Errorf("connection %d: %q %v", i, b, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestSizesRelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan criremote.TerminalSize)
	out := sizes(ctx, in)
	go func() { in <- criremote.TerminalSize{Width: 1, Height: 2} }()
	if got := <-out; got != (monitor.Size{Width: 1, Height: 2}) {
		t.Fatalf("relayed %+v", got)
	}
	cancel()
	if _, ok := <-out; ok {
		t.Fatal("relay did not end with its context")
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cri-rt-stream"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, certPEM, 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)

	f := &fakeContainers{}
	s, err := New(config.StreamConfig{Address: "127.0.0.1", TLSCertFile: certFile, TLSKeyFile: keyFile}, NewRuntime(f, hostNetNS{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	defer s.Stop(context.Background())
	u := execURL(t, s, &runtimeapi.ExecRequest{Cmd: []string{"echo", "secret", "", "0"}, Stdout: true})
	if u.Scheme != "https" {
		t.Fatalf("URL %s is not https", u)
	}
	ex, err := remotecommand.NewSPDYExecutor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: certPEM}}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "secret" {
		t.Fatalf("exec over TLS: %v %q", err, out.String())
	}
}

// TestPortForwardClientGoesAway checks that a pod connection whose server
// never answers nor closes is closed when the client's connection ends.
func TestPortForwardClientGoesAway(t *testing.T) {
	s, _ := newTestServer(t, time.Minute)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	podSide := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			podSide <- c
		}
	}()
	resp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "pod"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(resp.Url)
	tr, up, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(up, &http.Client{Transport: tr}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	<-ready
	ports, _ := fw.GetPorts()
	local, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	fmt.Fprint(local, "ping")
	var pod net.Conn
	select {
	case pod = <-podSide:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the pod")
	}
	defer pod.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(pod, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("pod read %q %v", buf, err)
	}
	// The client goes away while its connection is open and the pod is
	// silent: the pod's connection must be closed.
	close(stop)
	<-errc
	_ = pod.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := pod.Read(buf); err != io.EOF {
		t.Fatalf("pod connection after the client left: %v, want EOF", err)
	}
	// Closed, not only half-closed: the pod's writes fail.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := pod.Write([]byte("x")); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod's connection is still open for writing")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
