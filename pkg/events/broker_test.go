package events

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSlowSubscriberIsDropped(t *testing.T) {
	b := NewBroker()
	dropped := 0
	b.Dropped = func() { dropped++ }
	fast, cancelFast := b.Subscribe()
	defer cancelFast()
	slow, _ := b.Subscribe()
	for i := 0; i < BufferSize+1; i++ {
		b.Publish(&runtimeapi.ContainerEventResponse{ContainerId: "c"})
		<-fast // the fast one keeps up
	}
	if dropped != 1 || b.Subscribers() != 1 {
		t.Fatalf("dropped %d, subscribers %d", dropped, b.Subscribers())
	}
	n := 0
	for range slow {
		n++
	}
	if n != BufferSize {
		t.Fatalf("slow subscriber got %d events before being closed", n)
	}
}
