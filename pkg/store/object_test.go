package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type fakeWriter struct {
	puts map[string][]byte
	err  error
}

func (w *fakeWriter) Put(id string, b []byte) error {
	if w.err != nil {
		return w.err
	}
	w.puts[id] = append([]byte(nil), b...)
	return nil
}

type testMeta struct {
	ID   string `json:"id"`
	Late string `json:"late,omitempty"`
}

type testStatus struct {
	State string `json:"state"`
	Pid   int    `json:"pid,omitempty"`
}

type testObject struct {
	testMeta
	Object[testMeta, testStatus]
}

func TestObjectRoundTrip(t *testing.T) {
	w := &fakeWriter{puts: map[string][]byte{}}
	o := &testObject{testMeta: testMeta{ID: "a"}}
	cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app", Attempt: 2}}
	if err := o.Init(&o.testMeta, cfg, testStatus{State: "Creating"}); err != nil {
		t.Fatal(err)
	}
	o.Attach(w, "a")
	// Metadata filled in after Init is in the next write.
	o.Late = "known later"
	if err := o.Update(func(s *testStatus) error { s.State, s.Pid = "Running", 42; return nil }); err != nil {
		t.Fatal(err)
	}
	var back testObject
	var cfgBack runtimeapi.ContainerConfig
	if err := back.Decode(w.puts["a"], &back.testMeta, &cfgBack); err != nil {
		t.Fatal(err)
	}
	if back.ID != "a" || back.Late != "known later" || back.Status() != (testStatus{"Running", 42}) {
		t.Fatalf("decoded %+v %+v", back.testMeta, back.Status())
	}
	if cfgBack.GetMetadata().GetName() != "app" || cfgBack.GetMetadata().GetAttempt() != 2 {
		t.Fatalf("config %v", &cfgBack)
	}
	// The record is plain JSON with the three parts.
	var r map[string]json.RawMessage
	if err := json.Unmarshal(w.puts["a"], &r); err != nil || len(r) != 3 {
		t.Fatalf("record %s: %v", w.puts["a"], err)
	}
}

func TestObjectUpdateFailureChangesNothing(t *testing.T) {
	w := &fakeWriter{puts: map[string][]byte{}}
	o := &testObject{}
	if err := o.Init(&o.testMeta, &runtimeapi.PodSandboxConfig{}, testStatus{State: "Ready"}); err != nil {
		t.Fatal(err)
	}
	o.Attach(w, "b")
	w.err = errors.New("disk full")
	if err := o.Update(func(s *testStatus) error { s.State = "NotReady"; return nil }); err == nil {
		t.Fatal("Update succeeded with a failing writer")
	}
	if o.Status().State != "Ready" {
		t.Fatalf("status changed to %q though the write failed", o.Status().State)
	}
	w.err = nil
	refuse := errors.New("refused")
	if err := o.Update(func(s *testStatus) error { s.State = "X"; return refuse }); !errors.Is(err, refuse) || o.Status().State != "Ready" {
		t.Fatalf("Update = %v, state %q", err, o.Status().State)
	}
	if len(w.puts) != 0 {
		t.Fatalf("written: %v", w.puts)
	}
}

func TestCreation(t *testing.T) {
	var c Creation
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait before Finish = %v, want the context's error", err)
	}
	failed := errors.New("runc said no")
	go c.Finish(failed)
	<-c.Created()
	if err := c.Wait(context.Background()); !errors.Is(err, failed) {
		t.Fatalf("Wait = %v", err)
	}
	// A joining retry gets the same outcome.
	if err := c.Wait(context.Background()); !errors.Is(err, failed) {
		t.Fatalf("second Wait = %v", err)
	}
}
