package server

import (
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamBatch is how many items one message of a streaming list carries:
// small enough that no message nears the gRPC size limit that broke the
// unary lists of large nodes.
const streamBatch = 100

var errSlowSubscriber = fmt.Errorf("event subscriber too slow, dropped; resubscribe: %w", errdefs.ErrResourceExhausted)

// sendBatches sends items in batches; every item exactly once, then EOF.
func sendBatches[T any, R any](items []T, wrap func([]T) *R, send func(*R) error) error {
	for start := 0; start < len(items); start += streamBatch {
		end := min(start+streamBatch, len(items))
		if err := send(wrap(items[start:end])); err != nil {
			return err
		}
	}
	return nil
}

// StreamPodSandboxes is ListPodSandbox as a stream of batches.
func (s *Service) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := s.ListPodSandbox(stream.Context(), &runtimeapi.ListPodSandboxRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(resp.Items, func(b []*runtimeapi.PodSandbox) *runtimeapi.StreamPodSandboxesResponse {
		return &runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b}
	}, stream.Send)
}

// StreamContainers is ListContainers as a stream of batches.
func (s *Service) StreamContainers(r *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := s.ListContainers(stream.Context(), &runtimeapi.ListContainersRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(resp.Containers, func(b []*runtimeapi.Container) *runtimeapi.StreamContainersResponse {
		return &runtimeapi.StreamContainersResponse{Containers: b}
	}, stream.Send)
}

// StreamContainerStats is ListContainerStats as a stream of batches.
func (s *Service) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	resp, err := s.ListContainerStats(stream.Context(), &runtimeapi.ListContainerStatsRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(resp.Stats, func(b []*runtimeapi.ContainerStats) *runtimeapi.StreamContainerStatsResponse {
		return &runtimeapi.StreamContainerStatsResponse{ContainerStats: b}
	}, stream.Send)
}

// StreamPodSandboxStats is ListPodSandboxStats as a stream of batches.
func (s *Service) StreamPodSandboxStats(r *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	resp, err := s.ListPodSandboxStats(stream.Context(), &runtimeapi.ListPodSandboxStatsRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(resp.Stats, func(b []*runtimeapi.PodSandboxStats) *runtimeapi.StreamPodSandboxStatsResponse {
		return &runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b}
	}, stream.Send)
}

// StreamImages is ListImages as a stream of batches.
func (s *Service) StreamImages(r *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(resp.Images, func(b []*runtimeapi.Image) *runtimeapi.StreamImagesResponse {
		return &runtimeapi.StreamImagesResponse{Images: b}
	}, stream.Send)
}
