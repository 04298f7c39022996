package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists images; a filter names one image as ImageStatus would.
func (s *Service) ListImages(ctx context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if q := r.GetFilter().GetImage().GetImage(); q != "" {
		rec, err := s.images.Get(q)
		if err != nil {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{s.toCRIImage(rec)}}, nil
	}
	recs, err := s.images.List()
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{Images: make([]*runtimeapi.Image, 0, len(recs))}
	for _, rec := range recs {
		resp.Images = append(resp.Images, s.toCRIImage(rec))
	}
	return resp, nil
}
