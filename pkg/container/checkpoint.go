package container

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

var (
	criuOnce sync.Once
	criuErr  error
)

// criuUsable checks, once, that CRIU is installed and works on this
// kernel (`criu check`), so a checkpoint fails up front with the reason.
func criuUsable(ctx context.Context) error {
	criuOnce.Do(func() {
		path, err := exec.LookPath("criu")
		if err != nil {
			criuErr = fmt.Errorf("checkpointing needs CRIU, which is not installed (apt-get install criu): %w", errdefs.ErrFailedPrecondition)
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, path, "check").CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
				msg = msg[i+1:]
			}
			criuErr = fmt.Errorf("CRIU cannot checkpoint on this machine (`criu check`: %s): %w", msg, errdefs.ErrFailedPrecondition)
		}
	})
	return criuErr
}

// Checkpoint checkpoints a running container with the OCI runtime and
// CRIU, leaving it running, into a tar archive at location: the CRIU
// images under checkpoint/, and the container's OCI spec as config.json.
func (c *Controller) Checkpoint(ctx context.Context, id, location string) error {
	if location == "" || !filepath.IsAbs(location) {
		return fmt.Errorf("checkpoint location %q must be an absolute path: %w", location, errdefs.ErrInvalidArgument)
	}
	ctr, err := c.Store.Get(id)
	if err != nil {
		return err
	}
	if ctr.Status().State != StateRunning {
		return fmt.Errorf("container %s is not running: %w", ctr.ID, errdefs.ErrFailedPrecondition)
	}
	if err := criuUsable(ctx); err != nil {
		return err
	}
	rt, err := c.runtimeOf(ctr)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(c.Dir(ctr.ID), "checkpoint-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	images := filepath.Join(work, "checkpoint")
	args := append(rt.GlobalArgs(), "checkpoint", "--leave-running", "--image-path", images, "--work-path", filepath.Join(work, "work"), ctr.ID)
	if out, err := exec.CommandContext(ctx, rt.Path, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("checkpointing container %s: %s: %w", ctr.ID, strings.TrimSpace(string(out)), err)
	}
	spec, err := os.ReadFile(filepath.Join(c.Dir(ctr.ID), "config.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "config.json"), spec, 0o600); err != nil {
		return err
	}
	return writeTar(location, work, []string{"checkpoint", "config.json"})
}

// writeTar archives the named entries of dir into a new file at dst.
func writeTar(dst, dir string, names []string) (retErr error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); retErr == nil {
			retErr = cerr
		}
		if retErr != nil {
			os.Remove(dst)
		}
	}()
	tw := tar.NewWriter(f)
	for _, n := range names {
		err := filepath.WalkDir(filepath.Join(dir, n), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hdr, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			hdr.Name, _ = filepath.Rel(dir, p)
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				src, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, src)
				src.Close()
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
