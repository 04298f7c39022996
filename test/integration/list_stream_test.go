package integration

import (
	"context"
	"fmt"
	"io"
	"sort"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestStreamListsMatchUnary creates 300 containers and checks that the
// streaming list RPCs return exactly the items of their unary twins, in
// more than one batch.
func TestStreamListsMatchUnary(t *testing.T) {
	e := newPodEnv(t, 21)
	podID, podCfg, _ := e.pod(t, "lists")
	for i := 0; i < 300; i++ {
		e.createWith(t, podID, podCfg, fmt.Sprintf("c%03d", i), nil, "true")
	}
	list, err := e.rs.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 300 {
		t.Fatalf("ListContainers: %d %v", len(list.GetContainers()), err)
	}
	stream, err := e.rs.StreamContainers(ctx(t), &runtimeapi.StreamContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []string
	batches := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		batches++
		for _, c := range resp.Containers {
			streamed = append(streamed, c.Id)
		}
	}
	var unary []string
	for _, c := range list.Containers {
		unary = append(unary, c.Id)
	}
	sort.Strings(streamed)
	sort.Strings(unary)
	if fmt.Sprint(streamed) != fmt.Sprint(unary) || batches < 2 {
		t.Fatalf("StreamContainers: %d items in %d batches, want the %d of ListContainers in several", len(streamed), batches, len(unary))
	}

	statsStream, err := e.rs.StreamContainerStats(ctx(t), &runtimeapi.StreamContainerStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		resp, err := statsStream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(resp.ContainerStats)
	}
	if n != 300 {
		t.Fatalf("StreamContainerStats gave %d stats", n)
	}
	for _, check := range []func() (int, int){
		func() (int, int) {
			u, _ := e.rs.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
			s, _ := e.rs.StreamPodSandboxes(ctx(t), &runtimeapi.StreamPodSandboxesRequest{})
			got := 0
			for {
				r, err := s.Recv()
				if err != nil {
					break
				}
				got += len(r.PodSandboxes)
			}
			return len(u.Items), got
		},
		func() (int, int) {
			u, _ := e.is.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
			s, _ := e.is.StreamImages(ctx(t), &runtimeapi.StreamImagesRequest{})
			got := 0
			for {
				r, err := s.Recv()
				if err != nil {
					break
				}
				got += len(r.Images)
			}
			return len(u.Images), got
		},
		func() (int, int) {
			u, _ := e.rs.ListPodSandboxStats(ctx(t), &runtimeapi.ListPodSandboxStatsRequest{})
			s, _ := e.rs.StreamPodSandboxStats(ctx(t), &runtimeapi.StreamPodSandboxStatsRequest{})
			got := 0
			for {
				r, err := s.Recv()
				if err != nil {
					break
				}
				got += len(r.PodSandboxStats)
			}
			return len(u.Stats), got
		},
	} {
		if u, s := check(); u != s || u == 0 {
			t.Errorf("unary %d, streamed %d", u, s)
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := e.rs.RemovePodSandbox(rctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
}
