// Package framework starts a real cri-rt daemon for end-to-end tests and
// connects a real CRI client to it.
package framework

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/cri-rt once per test process and returns its path.
// CRI_RT_BINARY points at a prebuilt binary instead.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CRI_RT_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cri-rt-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cri-rt")
		// The monitor goes beside the daemon, where the daemon looks first.
		for _, pkg := range []string{"cri-rt", "cri-rt-monitor"} {
			cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", filepath.Join(dir, pkg), "github.com/cri-rt/cri-rt/cmd/"+pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes the binaries Binary built; call it after all tests.
func Cleanup() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	if pauseBin != "" {
		_ = os.RemoveAll(filepath.Dir(pauseBin))
	}
}

// Daemon is a cri-rt process started by a test.
type Daemon struct {
	t      testing.TB
	Dir    string // holds root, state, config
	Root   string
	State  string
	Socket string
	Config string
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	err    error
}

// NewDaemon lays out a throwaway root/state/socket and writes config (TOML,
// may be empty) to a config file; keys for root, state and the socket are
// passed as flags. It does not start the daemon.
func NewDaemon(t testing.TB, configTOML string) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "cri-rt-test-")
	if err != nil {
		t.Fatal(err)
	}
	// Traversable like /run: user-namespaced pods run as non-root host ids.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		t: t, Dir: dir,
		Root:   filepath.Join(dir, "root"),
		State:  filepath.Join(dir, "state"),
		Socket: filepath.Join(dir, "state", "cri-rt.sock"),
		Config: filepath.Join(dir, "config.toml"),
	}
	if err := os.WriteFile(d.Config, []byte(configTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Kill()
		os.RemoveAll(dir)
	})
	return d
}

// Args are the command-line arguments the daemon is started with.
func (d *Daemon) Args() []string {
	return []string{"--config", d.Config, "--root", d.Root, "--state", d.State, "--address", d.Socket, "--log-level", "debug"}
}

// Start runs the daemon and waits until its socket answers.
func (d *Daemon) Start() {
	d.t.Helper()
	if err := d.StartNoWait(); err != nil {
		d.t.Fatal(err)
	}
	if err := d.WaitReady(20 * time.Second); err != nil {
		d.t.Fatalf("%v\nlog:\n%s", err, d.Log())
	}
}

// StartNoWait runs the daemon without waiting for it.
func (d *Daemon) StartNoWait() error {
	d.log = &syncBuffer{}
	d.cmd = exec.Command(Binary(d.t), d.Args()...)
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	d.exited = make(chan struct{})
	if err := d.cmd.Start(); err != nil {
		return err
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	return nil
}

// WaitReady waits until the socket accepts a Version call or the process exits.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return fmt.Errorf("cri-rt exited early: %v", d.err)
		default:
		}
		if c, err := net.Dial("unix", d.Socket); err == nil {
			c.Close()
			conn := d.dial()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
			cancel()
			conn.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cri-rt not ready after %s", timeout)
}

// Wait waits for the process to exit and returns its error.
func (d *Daemon) Wait(timeout time.Duration) error {
	select {
	case <-d.exited:
		return d.err
	case <-time.After(timeout):
		return fmt.Errorf("cri-rt still running after %s", timeout)
	}
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) error { return d.cmd.Process.Signal(sig) }

// Pid of the daemon process.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Kill stops the daemon with SIGKILL if it still runs.
func (d *Daemon) Kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string {
	if d.log == nil {
		return ""
	}
	return d.log.String()
}

func (d *Daemon) dial() *grpc.ClientConn {
	conn, err := grpc.NewClient("unix://"+d.Socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		d.t.Fatal(err)
	}
	return conn
}

// Clients returns CRI clients connected to the daemon; closed at test end.
func (d *Daemon) Clients() (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	conn := d.dial()
	d.t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
}

// LogContains reports whether the daemon's output contains s.
func (d *Daemon) LogContains(s string) bool { return strings.Contains(d.Log(), s) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Crictl returns the crictl binary built by hack/tools.sh (CRICTL overrides).
func Crictl(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CRICTL"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "cri-rt", "cri-tools-v1.37.0", "crictl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("crictl not built: run `make tools` (%v)", err)
	}
	return p
}

// Crictl runs crictl against the daemon and returns its output.
func (d *Daemon) Crictl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cfg := filepath.Join(d.Dir, "crictl.yaml")
	if _, err := os.Stat(cfg); err != nil {
		y := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.Socket, d.Socket)
		if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(Crictl(t), append([]string{"--config", cfg}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}
