// Package events fans container lifecycle events out to GetContainerEvents
// subscribers (kubelet's Evented PLEG). Publishing never blocks: a
// subscriber whose buffer is full is dropped, and must resubscribe, rather
// than holding up the runtime.
package events

import (
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BufferSize is how many events a subscriber may lag behind.
const BufferSize = 1024

// Broker delivers events to subscribers.
type Broker struct {
	mu   sync.Mutex
	subs map[chan *runtimeapi.ContainerEventResponse]struct{}
	// Dropped is called when a slow subscriber is dropped.
	Dropped func()
}

// NewBroker returns an empty broker.
func NewBroker() *Broker {
	return &Broker{subs: map[chan *runtimeapi.ContainerEventResponse]struct{}{}}
}

// Subscribe returns a channel of events, closed when the subscriber is
// dropped or cancel is called.
func (b *Broker) Subscribe() (<-chan *runtimeapi.ContainerEventResponse, func()) {
	ch := make(chan *runtimeapi.ContainerEventResponse, BufferSize)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Publish sends ev to every subscriber without blocking.
func (b *Broker) Publish(ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
			if b.Dropped != nil {
				b.Dropped()
			}
		}
	}
}

// Subscribers returns how many subscribers there are.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
