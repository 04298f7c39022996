package store

import (
	"context"
	"encoding/json"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Record is how a runtime object is persisted: its fixed metadata, the
// CRI request it was made from, and its status.
type Record[M, S any] struct {
	Metadata M               `json:"metadata"`
	Config   json.RawMessage `json:"config"`
	Status   S               `json:"status"`
}

// Writer persists an object's record (an Index does).
type Writer interface {
	Put(id string, data []byte) error
}

// Object is the part of a runtime object (sandbox, container) that the
// store manages, embedded in it: its request, encoded once (it never
// changes, and protojson is the costly part of a write), and its status,
// which changes only through Update. M is the object's metadata, fixed
// once the object is created; S is its status.
type Object[M, S any] struct {
	w      Writer
	id     string
	md     *M
	config json.RawMessage

	mu     sync.RWMutex
	status S
}

// Init sets up a new object: md points at its metadata (it may still be
// filled in until the first Update after Attach), config is its request.
func (o *Object[M, S]) Init(md *M, config proto.Message, status S) error {
	b, err := protojson.Marshal(config)
	if err != nil {
		return err
	}
	o.md, o.config, o.status = md, b, status
	return nil
}

// Attach makes Update persist through w under id.
func (o *Object[M, S]) Attach(w Writer, id string) { o.w, o.id = w, id }

// Encode is the record of the object as it is now.
func (o *Object[M, S]) Encode() ([]byte, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.encode(o.status)
}

func (o *Object[M, S]) encode(st S) ([]byte, error) {
	return json.Marshal(Record[M, S]{Metadata: *o.md, Config: o.config, Status: st})
}

// Status returns a copy of the current status.
func (o *Object[M, S]) Status() S {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.status
}

// Update changes the status with fn and persists it; others see the
// change only once it is written, and on error nothing changes.
func (o *Object[M, S]) Update(fn func(*S) error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.status
	if err := fn(&st); err != nil {
		return err
	}
	if o.w != nil {
		b, err := o.encode(st)
		if err != nil {
			return err
		}
		if err := o.w.Put(o.id, b); err != nil {
			return err
		}
	}
	o.status = st
	return nil
}

// Decode reads a record written by Update into the object, whose metadata
// is at md, and its request into config.
func (o *Object[M, S]) Decode(b []byte, md *M, config proto.Message) error {
	var r Record[M, S]
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	if err := protojson.Unmarshal(r.Config, config); err != nil {
		return err
	}
	*md = r.Metadata
	o.md, o.config, o.status = md, r.Config, r.Status
	return nil
}

// Creation is an object's creation, which goes on when the caller that
// started it gives up (kubelet's RPC deadline), so that a retry of the same
// request can join it rather than fail on the name it reserved.
type Creation struct {
	once sync.Once
	done chan struct{}
	err  error
}

func (c *Creation) init() { c.once.Do(func() { c.done = make(chan struct{}) }) }

// Finish records how the creation ended and wakes whoever waits for it.
func (c *Creation) Finish(err error) {
	c.init()
	c.err = err
	close(c.done)
}

// Created is closed once the creation has ended, well or not.
func (c *Creation) Created() <-chan struct{} {
	c.init()
	return c.done
}

// Wait returns how the creation ended, or ctx's error if ctx ends first.
func (c *Creation) Wait(ctx context.Context) error {
	select {
	case <-c.Created():
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
