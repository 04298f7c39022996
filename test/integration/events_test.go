package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerEvents subscribes to GetContainerEvents (twice: several
// subscribers at once), runs a pod with two containers through their
// lifecycle and checks every event arrives in order with its statuses.
func TestContainerEvents(t *testing.T) {
	e := newPodEnv(t, 20)
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams []runtimeapi.RuntimeService_GetContainerEventsClient
	for i := 0; i < 2; i++ {
		s, err := e.rs.GetContainerEvents(sctx, &runtimeapi.GetEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	time.Sleep(100 * time.Millisecond) // let the subscriptions register

	podID, podCfg, _ := e.pod(t, "events")
	a := e.createWith(t, podID, podCfg, "a", nil, "sleep", "3600")
	b := e.createWith(t, podID, podCfg, "b", nil, "sh", "-c", "exit 2")
	e.start(t, a)
	e.start(t, b)
	e.waitState(t, b, runtimeapi.ContainerState_CONTAINER_EXITED)
	for _, id := range []string{a, b} {
		if _, err := e.rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	name := map[string]string{podID: "pod", a: "a", b: "b"}
	want := []string{
		"pod CREATED", "pod STARTED", "a CREATED", "b CREATED", "a STARTED", "b STARTED", "b STOPPED",
		"a STOPPED", "a DELETED", "b DELETED", "pod STOPPED", "pod DELETED",
	}
	for i, s := range streams {
		var got []string
		var bStopped *runtimeapi.ContainerEventResponse
		for len(got) < len(want) {
			ev, err := s.Recv()
			if err != nil {
				t.Fatalf("subscriber %d after %v: %v", i, got, err)
			}
			short := runtimeapi.ContainerEventType_name[int32(ev.ContainerEventType)]
			short = short[len("CONTAINER_") : len(short)-len("_EVENT")]
			got = append(got, fmt.Sprintf("%s %s", name[ev.ContainerId], short))
			if ev.PodSandboxStatus.GetId() != podID {
				t.Fatalf("event %v names pod %q", got[len(got)-1], ev.PodSandboxStatus.GetId())
			}
			if ev.ContainerId == b && ev.ContainerEventType == runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
				bStopped = ev
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("subscriber %d got\n%v\nwant\n%v", i, got, want)
		}
		found := false
		for _, cs := range bStopped.ContainersStatuses {
			if cs.Id == b && cs.State == runtimeapi.ContainerState_CONTAINER_EXITED && cs.ExitCode == 2 {
				found = true
			}
		}
		if !found || bStopped.PodSandboxStatus.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Fatalf("b's STOPPED event lacks its exited status: %+v", bStopped)
		}
	}
}
