package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/mount"
	"github.com/cri-rt/cri-rt/pkg/rollback"
)

// imageVolumesDir holds the mount points of a container's image volumes.
func (c *Controller) imageVolumesDir(id string) string {
	return filepath.Join(c.Dir(id), "imagevolumes")
}

func imageVolumeKey(id string, n int) string { return "imagevol-" + id + "-" + strconv.Itoa(n) }

// prepareImageVolumes mounts, read-only, the image of every mount that
// names one (KEP-4639) and returns container path -> host dir (the image
// rootfs, or its sub-path) and container path -> image ID. Each image gets
// its own writable-layer snapshot, mounted read-only, so that the image's
// layers are held while the container exists.
func (c *Controller) prepareImageVolumes(ctx context.Context, id string, cfg *runtimeapi.ContainerConfig, undo *rollback.Stack) (map[string]string, map[string]string, error) {
	vols, refs := map[string]string{}, map[string]string{}
	for n, m := range cfg.GetMounts() {
		if m.GetImage().GetImage() == "" {
			continue
		}
		field := fmt.Sprintf("mounts[%d]", n)
		img, err := c.Images.Get(m.GetImage().GetImage())
		if err != nil {
			return nil, nil, fmt.Errorf("%s: image %q: %w", field, m.GetImage().GetImage(), err)
		}
		key := imageVolumeKey(id, n)
		ms, err := c.Snapshots.Prepare(ctx, key, img.TopLayer())
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", field, err)
		}
		undo.Push(func() { _ = c.Snapshots.Remove(key) })
		target := filepath.Join(c.imageVolumesDir(id), strconv.Itoa(n))
		if err := os.MkdirAll(target, 0o700); err != nil {
			return nil, nil, err
		}
		for i := range ms {
			ms[i].Options = append(ms[i].Options, "ro")
		}
		if err := mount.All(ms, target); err != nil {
			return nil, nil, fmt.Errorf("%s: mounting image %s: %w", field, img.ID, err)
		}
		undo.Push(func() { _ = mount.UnmountAll(target) })
		src := target
		if sub := m.GetImageSubPath(); sub != "" {
			p, err := securejoin.SecureJoin(target, sub)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.image_sub_path %q: %v: %w", field, sub, err, errdefs.ErrInvalidArgument)
			}
			if _, err := os.Stat(p); err != nil {
				return nil, nil, fmt.Errorf("%s.image_sub_path %q does not exist in image %s: %w", field, sub, img.ID, errdefs.ErrInvalidArgument)
			}
			src = p
		}
		vols[m.GetContainerPath()] = src
		refs[m.GetContainerPath()] = img.ID.String()
	}
	return vols, refs, nil
}

// removeImageVolumes unmounts and frees a container's image volumes.
func (c *Controller) removeImageVolumes(id string) error {
	dir := c.imageVolumesDir(id)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if err := mount.UnmountAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	keys, err := c.Snapshots.ActiveKeys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "imagevol-"+id+"-") {
			if err := c.Snapshots.Remove(k); err != nil {
				return err
			}
		}
	}
	return nil
}
