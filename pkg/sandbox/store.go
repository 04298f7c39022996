// Package sandbox runs pod sandboxes: a pinned network namespace wired by
// CNI and a pause container that holds the pod's IPC, UTS and PID
// namespaces. pause has no monitor: nothing reads its output and its exit
// status means nothing, so the daemon creates it with the OCI runtime
// directly and watches its process through a pidfd; it outlives the daemon
// all the same. CNI ADD runs while pause is being created.
//
// A sandbox moves through these states (Status.State):
//
//	            RunPodSandbox
//	(absent) ───────────────▶ Creating ──netns, CNI ADD ∥ pause started──▶ Ready
//	                             │ any step fails: everything done so far is
//	                             ▼ undone (CNI DEL, netns, mounts, files, record)
//	                          (absent)
//	Ready ──StopPodSandbox, or the pause process died──▶ NotReady
//	NotReady ──StopPodSandbox──▶ NotReady (network released, idempotent)
//	Ready|NotReady ──RemovePodSandbox (stops first)──▶ (absent)
//
// A record is written before the network namespace is created, so that a
// crash at any point leaves something the next start can tear down.
package sandbox

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/network"
	"github.com/cri-rt/cri-rt/pkg/store"
)

// State of a sandbox.
type State string

// States; see the package documentation.
const (
	StateCreating State = "Creating"
	StateReady    State = "Ready"
	StateNotReady State = "NotReady"
)

// Metadata is fixed when the sandbox is created.
type Metadata struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"` // k8s_POD_<name>_<namespace>_<uid>_<attempt>
	ConfigHash     string    `json:"configHash"`
	RuntimeHandler string    `json:"runtimeHandler"`
	NetNSPath      string    `json:"netnsPath,omitempty"` // "" for host network
	CreatedAt      time.Time `json:"createdAt"`
}

// Status changes over the sandbox's life, only through Sandbox.Update.
type Status struct {
	State   State               `json:"state"`
	Pid     int                 `json:"pid,omitempty"` // pause
	Network *network.Attachment `json:"network,omitempty"`
	// NetworkReleased is set once CNI DEL succeeded, so it is not repeated.
	NetworkReleased bool      `json:"networkReleased,omitempty"`
	StoppedAt       time.Time `json:"stoppedAt,omitempty"`
	// Resources and Overhead are the pod-level resources kubelet last
	// reported (UpdatePodSandboxResources), as protojson.
	Resources json.RawMessage `json:"resources,omitempty"`
	Overhead  json.RawMessage `json:"overhead,omitempty"`
}

// Sandbox is one pod sandbox. Its status changes only through Update
// (store.Object), which persists it first.
type Sandbox struct {
	Metadata
	// Config is the request it was created from (immutable).
	Config *runtimeapi.PodSandboxConfig
	store.Object[Metadata, Status]
	store.Creation
}

// newSandbox makes the in-memory sandbox for a new request.
func newSandbox(md Metadata, cfg *runtimeapi.PodSandboxConfig) (*Sandbox, error) {
	sb := &Sandbox{Metadata: md, Config: cfg}
	return sb, sb.Init(&sb.Metadata, cfg, Status{State: StateCreating})
}

// Store holds the sandboxes in memory and in bbolt.
type Store struct {
	index *store.Index[*Sandbox]
}

// NewStore loads every sandbox record.
func NewStore(db *bolt.DB) (*Store, error) {
	st := &Store{}
	idx, err := store.Open(db, "sandboxes", "sandbox", func(id string, v []byte) (*Sandbox, string, error) {
		sb := &Sandbox{Config: &runtimeapi.PodSandboxConfig{}}
		if err := sb.Decode(v, &sb.Metadata, sb.Config); err != nil {
			return nil, "", err
		}
		sb.Attach(st, id)
		sb.Finish(nil)
		return sb, sb.Name, nil
	})
	st.index = idx
	return st, err
}

// Put writes a sandbox's record (for store.Object).
func (st *Store) Put(id string, b []byte) error { return st.index.Put(id, b) }

// reserve registers a new sandbox under its name. If the name is taken,
// it returns the existing sandbox and false.
func (st *Store) reserve(sb *Sandbox) (*Sandbox, bool, error) {
	b, err := sb.Encode()
	if err != nil {
		return nil, false, err
	}
	// Attached first: once reserved, others may Update it.
	sb.Attach(st, sb.ID)
	return st.index.Reserve(sb.ID, sb.Name, sb, b)
}

// Delete forgets a sandbox.
func (st *Store) Delete(id string) error { return st.index.Delete(id) }

// Get finds a sandbox by ID or unique ID prefix.
func (st *Store) Get(idOrPrefix string) (*Sandbox, error) { return st.index.Get(idOrPrefix) }

// List returns every sandbox, oldest first.
func (st *Store) List() []*Sandbox {
	out := st.index.Values()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

func (st *Store) byIDExists(id string) bool { return st.index.Exists(id) }

// MakeName is the unique sandbox name kubelet's metadata maps to.
func MakeName(m *runtimeapi.PodSandboxMetadata) string {
	return strings.Join([]string{"k8s", "POD", m.GetName(), m.GetNamespace(), m.GetUid(), fmt.Sprint(m.GetAttempt())}, "_")
}
