package server

import (
	"context"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/image"
)

// ImageStatus returns the image named by a name, ID, repo digest or ID
// prefix; an unknown image is a nil image, not an error (CRI).
func (s *Service) ImageStatus(ctx context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	rec, err := s.images.Get(r.GetImage().GetImage())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: s.toCRIImage(rec)}
	if r.GetVerbose() {
		info := map[string]any{
			"id": rec.ID, "target": rec.Target, "manifest": rec.Manifest, "layers": rec.Layers, "createdAt": rec.CreatedAt,
		}
		if cfg, err := s.images.Config(ctx, rec); err == nil {
			info["imageSpec"] = cfg
		}
		resp.Info = map[string]string{"info": toJSON(info)}
	}
	return resp, nil
}

// toCRIImage converts a record; the image's user becomes uid or username
// as the CRI wants (kubelet checks runAsNonRoot with it).
func (s *Service) toCRIImage(rec *image.Record) *runtimeapi.Image {
	img := &runtimeapi.Image{
		Id:          rec.ID.String(),
		RepoTags:    rec.RepoTags,
		RepoDigests: rec.RepoDigests,
		Size:        uint64(rec.Size),
		Pinned:      s.images.IsPinned(rec),
		Spec:        &runtimeapi.ImageSpec{Image: rec.ID.String(), Annotations: rec.Annotations},
	}
	user, _, _ := strings.Cut(rec.User, ":")
	if user != "" {
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			img.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			img.Username = user
		}
	}
	return img
}
