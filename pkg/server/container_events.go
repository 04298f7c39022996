package server

import (
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/container"
)

// publishEvent builds the event kubelet's Evented PLEG expects (the pod's
// status and all its containers' statuses at this moment) and publishes it.
func (s *Service) publishEvent(t runtimeapi.ContainerEventType, containerID, sandboxID string) {
	if s.events == nil || s.events.Subscribers() == 0 {
		return
	}
	ev := &runtimeapi.ContainerEventResponse{ContainerId: containerID, ContainerEventType: t, CreatedAt: time.Now().UnixNano()}
	if sb, err := s.sandboxStore.Get(sandboxID); err == nil {
		ev.PodSandboxStatus = toCRISandboxStatus(sb)
	} else {
		// Deleted: a minimal status still names the pod.
		ev.PodSandboxStatus = &runtimeapi.PodSandboxStatus{Id: sandboxID, State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	}
	for _, ctr := range s.containerStore.InSandbox(sandboxID) {
		if ctr.Status().State != container.StateCreating {
			ev.ContainersStatuses = append(ev.ContainersStatuses, s.toCRIContainerStatus(ctr))
		}
	}
	s.events.Publish(ev)
}

// GetContainerEvents streams container and sandbox lifecycle events until
// the client goes away. A client too slow to keep up is disconnected (and
// counted) rather than slowing the runtime down; it may resubscribe.
func (s *Service) GetContainerEvents(r *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ch, cancel := s.events.Subscribe()
	defer cancel()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return errSlowSubscriber
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}
