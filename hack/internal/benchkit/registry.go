package benchkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
)

// RepoName is the repository both pull images are pushed to, so the second
// image's shared layers are the same blobs.
const RepoName = "bench/big"

// Registry is Debian's docker-registry (distribution 2.8) serving plain
// http on a loopback port, storing in a directory of the work dir: a real
// registry, so that pulls and curl pay what they would against one, with
// no network beyond loopback.
type Registry struct {
	Host string // 127.0.0.1:port
	proc *Process
}

// StartRegistry starts docker-registry storing in dir and waits until it
// answers /v2/.
func StartRegistry(ctx context.Context, dir string) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry not installed (make deps): %w", err)
	}
	host, err := FreePort()
	if err != nil {
		return nil, err
	}
	// No access log: one line per request would be noise, and writing it
	// costs the registry time during the transfer floor.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "storage"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := StartProcess(bin, []string{"serve", cfgPath}, filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: host, proc: p}
	if err := r.waitReady(ctx, 15*time.Second); err != nil {
		r.Stop()
		return nil, fmt.Errorf("%w\n%s", err, p.LogTail())
	}
	return r, nil
}

// FreePort returns a loopback address with a port that was free a moment
// ago, for servers (docker-registry, a metrics endpoint) that cannot be
// handed a listening socket.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (r *Registry) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.proc.Exited() {
			return fmt.Errorf("docker-registry exited: %v", r.proc.Err())
		}
		if resp, err := client.Get(r.url("/v2/")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("docker-registry did not answer within %s", timeout)
}

// Stop ends the registry (SIGTERM, then SIGKILL).
func (r *Registry) Stop() { r.proc.Stop(5 * time.Second) }

func (r *Registry) url(p string) string { return "http://" + r.Host + p }

// BlobURL is where a layer is downloaded from.
func (r *Registry) BlobURL(d digest.Digest) string {
	return r.url("/v2/" + RepoName + "/blobs/" + d.String())
}

// BlobURLs returns the BlobURL of each of ls, for the transfer floor.
func (r *Registry) BlobURLs(ls []*Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = r.BlobURL(l.Digest)
	}
	return out
}
