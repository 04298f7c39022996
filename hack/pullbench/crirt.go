package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

// registryName is the name images are pulled by; hosts.toml sends it to
// the local registry over http, as a node's config would for a mirror.
const registryName = "myregistry.test"

// crirt runs cri-rt daemons on throwaway directories.
type crirt struct {
	bin    string
	config string // config file: only [registry] config_path
	work   string // daemon directories go here
	keep   bool
	n      int // daemons started, names their directories
}

// setupCrirt writes the certs.d dir and config file every daemon uses.
func setupCrirt(bin, work, registryHost string, keep bool) (*crirt, error) {
	hostDir := filepath.Join(work, "certs.d", registryName)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return nil, err
	}
	hosts := fmt.Sprintf("server = %q\n", "http://"+registryHost)
	if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		return nil, err
	}
	cfg := filepath.Join(work, "cri-rt.toml")
	body := fmt.Sprintf("[registry]\nconfig_path = %q\n", filepath.Join(work, "certs.d"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return nil, err
	}
	return &crirt{bin: bin, config: cfg, work: work, keep: keep}, nil
}

// buildCrirt builds cmd/cri-rt into dir when no binary was given.
func buildCrirt(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "cri-rt")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/cri-rt/cri-rt/cmd/cri-rt")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cri-rt: %v\n%s", err, out)
	}
	return bin, nil
}

// describe returns the binary's version and the pull settings of the
// config the benchmark runs it with, for the report.
func (c *crirt) describe() string {
	out, err := exec.Command(c.bin, "version").Output()
	version := strings.Join(strings.Fields(string(out)), " ")
	if err != nil {
		version = "unknown (" + err.Error() + ")"
	}
	dump, _ := exec.Command(c.bin, "--config", c.config, "config", "dump").Output()
	var settings []string
	for _, line := range strings.Split(string(dump), "\n") {
		if strings.HasPrefix(line, "max_concurrent_downloads") {
			settings = append(settings, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.TrimSpace(version + "; " + strings.Join(settings, ", "))
}

// daemon is one running cri-rt with a CRI client.
type daemon struct {
	dir    string
	proc   *benchkit.Process
	conn   *grpc.ClientConn
	images runtimeapi.ImageServiceClient
}

// withDaemon starts a daemon on a fresh root, state and socket, runs fn,
// then stops the daemon and removes its directories, also when fn fails.
func (c *crirt) withDaemon(ctx context.Context, fn func(*daemon) error) (err error) {
	c.n++
	d, err := c.start(ctx, filepath.Join(c.work, fmt.Sprintf("cri-rt-%d", c.n)))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close(c.keep)) }()
	if err := fn(d); err != nil {
		return fmt.Errorf("%w\ncri-rt log (%s):\n%s", err, d.proc.LogPath(), d.proc.LogTail())
	}
	return nil
}

func (c *crirt) start(ctx context.Context, dir string) (*daemon, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "state", "cri-rt.sock")
	args := []string{"--config", c.config, "--root", filepath.Join(dir, "root"),
		"--state", filepath.Join(dir, "state"), "--address", sock}
	p, err := benchkit.StartProcess(c.bin, args, filepath.Join(dir, "cri-rt.log"))
	if err != nil {
		return nil, err
	}
	d := &daemon{dir: dir, proc: p}
	if err := d.connect(ctx, sock, 20*time.Second); err != nil {
		_ = d.close(c.keep)
		return nil, fmt.Errorf("%w\n%s", err, p.LogTail())
	}
	return d, nil
}

// connect waits for the socket to answer a Version call.
func (d *daemon) connect(ctx context.Context, sock string, timeout time.Duration) error {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	d.conn = conn
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if d.proc.Exited() {
			return fmt.Errorf("cri-rt exited: %v", d.proc.Err())
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := rt.Version(cctx, &runtimeapi.VersionRequest{})
			cancel()
			if err == nil {
				d.images = runtimeapi.NewImageServiceClient(conn)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("cri-rt not ready after %s", timeout)
}

// close stops the daemon (SIGTERM as a node would) and removes its
// directories. A pull mounts nothing, but anything found mounted below the
// directory is detached first so that removal cannot fail or leave mounts.
func (d *daemon) close(keep bool) error {
	if d.conn != nil {
		d.conn.Close()
	}
	var err error
	if !d.proc.Stop(20 * time.Second) {
		err = fmt.Errorf("cri-rt did not stop on SIGTERM within 20s; killed")
	}
	if keep {
		return err
	}
	if uerr := benchkit.UnmountBelow(d.dir); uerr != nil {
		return errors.Join(err, uerr)
	}
	return errors.Join(err, os.RemoveAll(d.dir))
}

// pull times one PullImage call and reports the daemon's peak RSS during
// it: the peak is reset just before (clear_refs 5), so it is the pull's
// own, not the startup's or an earlier pull's.
func (d *daemon) pull(ctx context.Context, ref string) (sample, error) {
	benchkit.ResetPeakRSS(d.proc.Pid())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	start := time.Now()
	_, err := d.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	s := sample{dur: time.Since(start), rssKiB: benchkit.PeakRSS(d.proc.Pid())}
	if err != nil {
		return sample{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return s, nil
}

// coldPull times pulling the image on an empty root.
func (c *crirt) coldPull(ctx context.Context, ref string) (s sample, err error) {
	err = c.withDaemon(ctx, func(d *daemon) error {
		s, err = d.pull(ctx, ref)
		return err
	})
	return s, err
}

// sharedPull pulls base untimed, then times ref, which shares all but its
// last layer with base: what a node does when a new version of an
// application is rolled out on an image it has.
func (c *crirt) sharedPull(ctx context.Context, base, ref string) (s sample, err error) {
	err = c.withDaemon(ctx, func(d *daemon) error {
		if _, err := d.pull(ctx, base); err != nil {
			return err
		}
		benchkit.SyncDisks()
		s, err = d.pull(ctx, ref)
		return err
	})
	return s, err
}
