package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/netns"
	"github.com/cri-rt/cri-rt/test/framework"
)

// Streaming tests use networks 40-49.

// metricsConfig makes the test daemon serve metrics on a port the kernel
// picks, for go_goroutines.
const metricsConfig = "[metrics]\naddress = \"127.0.0.1:0\""

// runningContainer runs a busybox container with cmd in a new pod and
// waits until it runs.
func (e *podEnv) runningContainer(t *testing.T, pod string, mutate func(*runtimeapi.ContainerConfig), cmd ...string) (podID, ctrID string) {
	t.Helper()
	podID, podCfg, _ := e.pod(t, pod)
	ctrID = e.createWith(t, podID, podCfg, pod+"-c", mutate, cmd...)
	e.start(t, ctrID)
	e.waitState(t, ctrID, runtimeapi.ContainerState_CONTAINER_RUNNING)
	return podID, ctrID
}

func (e *podEnv) execURL(t *testing.T, req *runtimeapi.ExecRequest) *url.URL {
	t.Helper()
	resp, err := e.rs.Exec(ctx(t), req)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := net.SplitHostPort(u.Host); h != "127.0.0.1" {
		t.Fatalf("stream URL %s is not on loopback", u)
	}
	return u
}

func (e *podEnv) attachURL(t *testing.T, req *runtimeapi.AttachRequest) *url.URL {
	t.Helper()
	resp, err := e.rs.Attach(ctx(t), req)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// stream runs a remote command session over SPDY.
func stream(ctx context.Context, u *url.URL, opts remotecommand.StreamOptions) error {
	ex, err := remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, opts)
}

// exitCode is the exit code a session reported: 0 for success, -1 for an
// error that carries none.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	// client-go returns its own CodeExitError; any exit error will do.
	var ee interface{ ExitStatus() int }
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	return -1
}

// watchBuffer collects output and lets a test wait for a piece of it.
type watchBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *watchBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *watchBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output contains s, doing poke (if any) while it
// does not.
func (b *watchBuffer) waitFor(t *testing.T, s string, timeout time.Duration, poke func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("output has no %q after %s:\n%q", s, timeout, b.String())
		}
		if poke != nil {
			poke()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sizeQueue is a remotecommand.TerminalSizeQueue fed by the test.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	sz, ok := <-q
	if !ok {
		return nil
	}
	return &sz
}

func TestExecStreams(t *testing.T) {
	e := newPodEnv(t, 40)
	podID, id := e.runningContainer(t, "exec", nil, "sleep", "3600")

	t.Run("stdin-stdout-stderr-exit-code", func(t *testing.T) {
		u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "cat; echo to-err >&2; exit 5"}, Stdin: true, Stdout: true, Stderr: true})
		var out, errb bytes.Buffer
		err := stream(ctx(t), u, remotecommand.StreamOptions{Stdin: strings.NewReader("line 1\nline 2\n"), Stdout: &out, Stderr: &errb})
		if exitCode(err) != 5 || out.String() != "line 1\nline 2\n" || errb.String() != "to-err\n" {
			t.Fatalf("exec: err %v, stdout %q, stderr %q", err, out.String(), errb.String())
		}
		u = e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"id", "-u"}, Stdout: true})
		out.Reset()
		if err := stream(ctx(t), u, remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "0\n" {
			t.Fatalf("exec id: %v %q", err, out.String())
		}
		// A URL is good for one session only.
		if err := stream(ctx(t), u, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
			t.Fatal("a used exec URL served a second session")
		}
	})

	t.Run("tty-resize", func(t *testing.T) {
		u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "stty size; while read l; do stty size; done; exit 3"}, Stdin: true, Stdout: true, Tty: true})
		sizes := make(sizeQueue, 1)
		sizes <- remotecommand.TerminalSize{Width: 80, Height: 24}
		inR, inW := io.Pipe()
		var out watchBuffer
		errc := make(chan error, 1)
		go func() {
			errc <- stream(ctx(t), u, remotecommand.StreamOptions{Stdin: inR, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		}()
		out.waitFor(t, "24 80", 10*time.Second, nil)
		sizes <- remotecommand.TerminalSize{Width: 132, Height: 43}
		// The resize and the input travel on different streams: type lines
		// until a `stty size` runs after the resize.
		out.waitFor(t, "43 132", 10*time.Second, func() { _, _ = inW.Write([]byte("\n")) })
		inW.Close() // ^D: read fails, the shell exits 3
		close(sizes)
		select {
		case err := <-errc:
			if exitCode(err) != 3 {
				t.Fatalf("tty exec ended with %v, want exit code 3; output %q", err, out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tty exec did not end; output %q", out.String())
		}
		if strings.Contains(out.String(), "0 0") {
			t.Fatalf("the process saw a terminal without a size: %q", out.String())
		}
	})

	t.Run("websocket", func(t *testing.T) {
		// cri-streaming serves the v1-v4 channel protocols over WebSocket
		// (as kubelet's server always did); v5, NewWebSocketExecutor's
		// default, is the API server's.
		u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 4"}, Stdout: true, Stderr: true})
		ex, err := remotecommand.NewWebSocketExecutorForProtocols(&rest.Config{}, "GET", u.String(), "v4.channel.k8s.io")
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		err = ex.StreamWithContext(ctx(t), remotecommand.StreamOptions{Stdout: &out, Stderr: &errb})
		if exitCode(err) != 4 || out.String() != "out\n" || errb.String() != "err\n" {
			t.Fatalf("websocket exec: err %v, stdout %q, stderr %q", err, out.String(), errb.String())
		}
	})

	t.Run("client-goes-away", func(t *testing.T) {
		u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo started; exec sleep 1234"}, Stdout: true})
		c, cancel := context.WithCancel(ctx(t))
		var out watchBuffer
		errc := make(chan error, 1)
		go func() { errc <- stream(c, u, remotecommand.StreamOptions{Stdout: &out}) }()
		out.waitFor(t, "started", 10*time.Second, nil)
		cancel()
		<-errc
		waitNoProcess(t, e, id, "sleep 1234")
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := e.rs.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: "missing", Cmd: []string{"true"}, Stdout: true}); err == nil {
			t.Fatal("Exec in a missing container succeeded")
		}
		if _, err := e.rs.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}}); err == nil {
			t.Fatal("Exec without any stream succeeded")
		}
		// A command that does not exist: the runtime's error reaches the
		// client with a non-zero exit code.
		u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"no-such-command"}, Stdout: true, Stderr: true})
		var errb bytes.Buffer
		err := stream(ctx(t), u, remotecommand.StreamOptions{Stdout: io.Discard, Stderr: &errb})
		if exitCode(err) == 0 || !strings.Contains(errb.String(), "no-such-command") {
			t.Fatalf("missing command: %v, stderr %q", err, errb.String())
		}
	})

	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true}); err == nil {
		t.Fatal("Exec in a removed container succeeded")
	}
	e.assertNothingLeft(t, []string{podID, id})
}

// waitNoProcess waits until no process in the container has a command line
// containing cmd.
func waitNoProcess(t *testing.T, e *podEnv, id, cmd string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := e.rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"ps", "-o", "args"}, Timeout: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Stdout), cmd) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q still runs in the container:\n%s", cmd, res.Stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAttach(t *testing.T) {
	e := newPodEnv(t, 41)
	tickPod, ticker := e.runningContainer(t, "ticker", nil, "sh", "-c", "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
	catPod, cat := e.runningContainer(t, "cat", func(c *runtimeapi.ContainerConfig) { c.Stdin = true }, "cat")
	ttyPod, tty := e.runningContainer(t, "tty", func(c *runtimeapi.ContainerConfig) { c.Stdin, c.Tty = true, true }, "sh")

	// seeTicks attaches to the ticker, sees output and detaches.
	seeTicks := func(t *testing.T) {
		t.Helper()
		u := e.attachURL(t, &runtimeapi.AttachRequest{ContainerId: ticker, Stdout: true, Stderr: true})
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		var out watchBuffer
		errc := make(chan error, 1)
		go func() { errc <- stream(c, u, remotecommand.StreamOptions{Stdout: &out, Stderr: io.Discard}) }()
		out.waitFor(t, "tick", 10*time.Second, nil)
		cancel()
		select {
		case <-errc:
		case <-time.After(5 * time.Second):
			t.Fatal("attach did not end when the client went away")
		}
	}
	seeTicks(t)

	t.Run("stdin", func(t *testing.T) {
		u := e.attachURL(t, &runtimeapi.AttachRequest{ContainerId: cat, Stdin: true, Stdout: true, Stderr: true})
		inR, inW := io.Pipe()
		var out watchBuffer
		errc := make(chan error, 1)
		go func() {
			errc <- stream(ctx(t), u, remotecommand.StreamOptions{Stdin: inR, Stdout: &out, Stderr: io.Discard})
		}()
		// What is typed before the monitor has the client is not echoed:
		// type until it is.
		out.waitFor(t, "hello cat", 10*time.Second, func() { _, _ = inW.Write([]byte("hello cat\n")) })
		// The client's stdin ends: a container without stdin_once keeps
		// running, and the session ends.
		inW.Close()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("attach: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("attach did not end with the client's stdin")
		}
		e.waitState(t, cat, runtimeapi.ContainerState_CONTAINER_RUNNING)
	})

	t.Run("tty-resize", func(t *testing.T) {
		u := e.attachURL(t, &runtimeapi.AttachRequest{ContainerId: tty, Stdin: true, Stdout: true, Tty: true})
		sizes := make(sizeQueue, 1)
		sizes <- remotecommand.TerminalSize{Width: 120, Height: 50}
		inR, inW := io.Pipe()
		var out watchBuffer
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- stream(c, u, remotecommand.StreamOptions{Stdin: inR, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		}()
		out.waitFor(t, "50 120", 10*time.Second, func() { _, _ = inW.Write([]byte("stty size\n")) })
		close(sizes)
		cancel()
		inW.Close()
		<-errc
		e.waitState(t, tty, runtimeapi.ContainerState_CONTAINER_RUNNING)
	})

	// Attach goes through the monitor, which outlives the daemon.
	e.d.Kill()
	e.d.Start()
	e.rs, e.is = e.d.Clients()
	seeTicks(t)

	if _, err := e.rs.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: "missing", Stdout: true}); err == nil {
		t.Fatal("Attach to a missing container succeeded")
	}
	// cat and sh, as their containers' init, ignore SIGTERM: remove them
	// (SIGKILL) rather than wait for a pod stop's grace period.
	for _, c := range []string{ticker, cat, tty} {
		if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: c}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{tickPod, catPod, ttyPod} {
		if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p}); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNothingLeft(t, []string{tickPod, catPod, ttyPod, ticker, cat, tty})
}

// echoServer serves "<port>: <what the client sent>" on each connection
// accepted from ln, after the client's EOF.
func echoServer(ln net.Listener, port int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			b, _ := io.ReadAll(c)
			fmt.Fprintf(c, "%d: %s", port, b)
		}()
	}
}

// forward starts a client-go port forwarder to the pod's ports and returns
// the local ports, in order.
func (e *podEnv) forward(t *testing.T, podID string, ports ...int) []int {
	t.Helper()
	resp, err := e.rs.PortForward(ctx(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	tr, up, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(up, &http.Client{Transport: tr}, "POST", u)
	var specs []string
	for _, p := range ports {
		specs = append(specs, "0:"+strconv.Itoa(p))
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, specs, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port forward: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("port forward not ready")
	}
	t.Cleanup(func() {
		close(stop)
		<-errc
	})
	fps, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	local := make([]int, len(fps))
	for i, p := range fps {
		local[i] = int(p.Local)
	}
	return local
}

// roundTrip sends msg to a forwarded local port and returns the answer.
func roundTrip(local int, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestPortForward(t *testing.T) {
	e := newPodEnv(t, 42)
	podID, _, _ := e.pod(t, "pf")
	_, info := e.status(t, podID)
	// Servers on the pod's loopback: reachable only from inside its netns.
	ports := []int{8080, 8081}
	for _, p := range ports {
		var ln net.Listener
		if err := netns.Do(info.NetnsPath, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); return }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go echoServer(ln, p)
	}
	local := e.forward(t, podID, ports...)

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			port := ports[i%2]
			msg := fmt.Sprintf("hello %d", i)
			got, err := roundTrip(local[i%2], msg)
			if want := fmt.Sprintf("%d: %s", port, msg); err != nil || got != want {
				errs <- fmt.Errorf("connection %d: got %q (%v), want %q", i, got, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A port nobody listens on fails that connection, not the session.
	closed := e.forward(t, podID, 9)
	if got, err := roundTrip(closed[0], "x"); err == nil && got != "" {
		t.Fatalf("port 9 answered %q", got)
	}
	if got, err := roundTrip(local[0], "again"); err != nil || got != "8080: again" {
		t.Fatalf("after a failed connection: %q %v", got, err)
	}

	t.Run("host-network", func(t *testing.T) {
		cfg := podConfig("pf-host")
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
		hostPod := e.runPod(t, cfg)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		go echoServer(ln, port)
		local := e.forward(t, hostPod, port)
		if got, err := roundTrip(local[0], "host"); err != nil || got != fmt.Sprintf("%d: host", port) {
			t.Fatalf("host network: %q %v", got, err)
		}
	})

	if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.PortForward(ctx(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID}); err == nil {
		t.Fatal("PortForward to a stopped pod succeeded")
	}
}

// goroutines reads go_goroutines from the daemon's metrics endpoint.
func goroutines(t *testing.T, metricsAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no go_goroutines in the metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func openFds(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestStreamingLeaks runs 200 exec sessions, a fifth of them cancelled by
// the client mid-way, and checks that the daemon's goroutines and open fds
// come back to where they were, and that no process is left.
func TestStreamingLeaks(t *testing.T) {
	e := newPodEnv(t, 43, metricsConfig)
	podID, id := e.runningContainer(t, "leaks", nil, "sleep", "3600")
	m := regexp.MustCompile(`"Serving metrics" address="([^"]+)"`).FindStringSubmatch(e.d.Log())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", tail(e.d.Log(), 30))
	}
	metricsAddr := m[1]

	session := func(i int) error {
		cancelled := i%5 == 0
		cmd := []string{"sh", "-c", "echo " + strconv.Itoa(i)}
		if cancelled {
			cmd = []string{"sh", "-c", "echo started; exec sleep 999"}
		}
		tty := i%7 == 0 && !cancelled
		resp, err := e.rs.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd, Stdin: i%2 == 0, Stdout: true, Stderr: !tty, Tty: tty})
		if err != nil {
			return err
		}
		if resp.Url == "" {
			return errors.New("no URL")
		}
		u, _ := url.Parse(resp.Url)
		var out watchBuffer
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		opts := remotecommand.StreamOptions{Stdout: &out, Stderr: io.Discard, Tty: tty}
		if tty {
			opts.Stderr = nil
		}
		if i%2 == 0 {
			opts.Stdin = strings.NewReader("")
		}
		if !cancelled {
			if err := stream(c, u, opts); err != nil {
				return fmt.Errorf("session %d: %v", i, err)
			}
			if !strings.Contains(out.String(), strconv.Itoa(i)) {
				return fmt.Errorf("session %d: output %q", i, out.String())
			}
			return nil
		}
		errc := make(chan error, 1)
		go func() { errc <- stream(c, u, opts) }()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "started") {
			if time.Now().After(deadline) {
				return fmt.Errorf("session %d: no output", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-errc
		return nil
	}
	run := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		errs := make(chan error, to-from)
		for i := from; i < to; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := session(i); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// Warm up: pools and caches that grow once are not leaks.
	run(1000, 1010)
	time.Sleep(time.Second)
	baseG, baseFd := goroutines(t, metricsAddr), openFds(t, e.d.Pid())

	start := time.Now()
	run(0, 200)
	t.Logf("200 sessions in %s", time.Since(start))

	deadline := time.Now().Add(15 * time.Second)
	for {
		g, fds := goroutines(t, metricsAddr), openFds(t, e.d.Pid())
		if g <= baseG+5 && fds <= baseFd+3 {
			t.Logf("goroutines %d (baseline %d), fds %d (baseline %d)", g, baseG, fds, baseFd)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leak: goroutines %d (baseline %d), fds %d (baseline %d)", g, baseG, fds, baseFd)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitNoProcess(t, e, id, "sleep 999")
	// Nor are runtime processes or exec files left on the host.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "runc") && strings.Contains(string(b), id) && strings.Contains(string(b), "exec") {
			t.Errorf("runtime process left: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(e.d.State, "containers", id, "exec-*")); len(left) > 0 {
		t.Errorf("exec files left: %v", left)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
}

// crictlConfig writes crictl's config for the daemon (as Daemon.Crictl
// does) and returns its path.
func crictlConfig(t *testing.T, e *podEnv) string {
	t.Helper()
	cfg := filepath.Join(e.d.Dir, "crictl.yaml")
	y := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", e.d.Socket, e.d.Socket)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCrictlExecAttach runs `crictl exec -it` under a real pseudo-terminal
// (script(1) makes one) and `crictl attach`.
func TestCrictlExecAttach(t *testing.T) {
	e := newPodEnv(t, 44)
	crictl := framework.Crictl(t)
	cfg := crictlConfig(t, e)
	podID, id := e.runningContainer(t, "crictl", nil, "sh", "-c", "trap 'exit 0' TERM; while true; do echo tick; sleep 0.1; done")

	// The inner shell sizes script's terminal; crictl sends that size.
	inner := fmt.Sprintf("stty rows 33 cols 111; %s --config %s exec -it %s sh -c 'stty size; exit 3'", crictl, cfg, id)
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	cmd := exec.CommandContext(sctx, "script", "-qec", inner, "/dev/null")
	// script types its terminal's EOF character when its stdin ends, and
	// crictl's raw mode makes that a NUL: a stdin that stays open avoids it.
	// A file, not a reader: exec.Cmd would wait for a copy of a reader.
	stdin, keep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	cmd.Stdin = stdin
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	stdin.Close()
	// crictl reports the exit code and exits 1 itself.
	if err == nil || !strings.Contains(string(out), "33 111\r\n") || !strings.Contains(string(out), "exit code 3") {
		t.Fatalf("crictl exec -it: %v\n%q", err, out)
	}

	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	attach := exec.CommandContext(c, crictl, "--config", cfg, "attach", id)
	var aout watchBuffer
	attach.Stdout, attach.Stderr = &aout, &aout
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	aout.waitFor(t, "tick", 10*time.Second, nil)
	_ = attach.Process.Kill()
	_ = attach.Wait()

	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
}
