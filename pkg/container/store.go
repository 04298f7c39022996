// Package container runs the workload containers of pod sandboxes. Each
// container has a writable overlay rootfs over its image, an OCI spec built
// by pkg/oci, and a monitor process (pkg/monitor) that owns its stdio,
// writes its CRI log and records its exit, so that containers and their
// logs outlive the daemon.
//
// A container moves through these states (Status.State):
//
//	            CreateContainer
//	(absent) ─────────────────▶ Created ──StartContainer──▶ Running
//	                │ failure: rollback                        │ process exits /
//	                ▼                                          ▼ StopContainer
//	            (absent)          Created ──(never started)──▶ Exited
//	Created|Running|Exited ──RemoveContainer (stops first)──▶ (absent)
//
// A record is written before the rootfs is prepared, so that a crash at any
// point leaves something the next start removes.
package container

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/store"
)

// State of a container.
type State string

// States; see the package documentation.
const (
	StateCreating State = "Creating"
	StateCreated  State = "Created"
	StateRunning  State = "Running"
	StateExited   State = "Exited"
)

// Metadata is fixed when the container is created.
type Metadata struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"` // k8s_<container>_<pod>_<namespace>_<uid>_<attempt>
	ConfigHash string    `json:"configHash"`
	SandboxID  string    `json:"sandboxID"`
	ImageID    string    `json:"imageID"`   // image config digest
	ImageRef   string    `json:"imageRef"`  // a repo digest of the image, else its ID
	ImageName  string    `json:"imageName"` // as the request named it
	LogPath    string    `json:"logPath,omitempty"`
	StopSignal int       `json:"stopSignal"`
	CgroupDir  string    `json:"cgroupDir,omitempty"` // memory cgroup, for stats
	CgroupPath string    `json:"cgroupPath"`          // the spec's cgroupsPath
	CreatedAt  time.Time `json:"createdAt"`
	// User is the resolved user the process runs as.
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
	// ImageVolumeRefs maps the container path of each image volume to the
	// image ID mounted there (reported in ContainerStatus mounts).
	ImageVolumeRefs map[string]string `json:"imageVolumeRefs,omitempty"`
}

// Status changes over the container's life, only through Container.Update.
type Status struct {
	State      State     `json:"state"`
	Pid        int       `json:"pid,omitempty"`
	MonitorPid int       `json:"monitorPid,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	ExitCode   int32     `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	// Resources are the current limits (changed by UpdateContainerResources).
	Resources json.RawMessage `json:"resources,omitempty"`
	// Stopping is set while StopContainer waits, so an exit is expected.
	Stopping bool `json:"-"`
}

// Container is one workload container. Its status changes only through
// Update (store.Object), which persists it first.
type Container struct {
	Metadata
	Config *runtimeapi.ContainerConfig
	store.Object[Metadata, Status]

	// lifecycle orders Start against the recording of an exit, so that a
	// container that exits at once is reported started before stopped.
	lifecycle sync.Mutex
	store.Creation
}

// newContainer makes the in-memory container for a new request.
func newContainer(md Metadata, cfg *runtimeapi.ContainerConfig) (*Container, error) {
	c := &Container{Metadata: md, Config: cfg}
	return c, c.Init(&c.Metadata, cfg, Status{State: StateCreating})
}

// Store holds the containers in memory and in bbolt.
type Store struct {
	index *store.Index[*Container]
}

// NewStore loads every container record.
func NewStore(db *bolt.DB) (*Store, error) {
	st := &Store{}
	idx, err := store.Open(db, "containers", "container", func(id string, v []byte) (*Container, string, error) {
		c := &Container{Config: &runtimeapi.ContainerConfig{}}
		if err := c.Decode(v, &c.Metadata, c.Config); err != nil {
			return nil, "", err
		}
		c.Attach(st, id)
		c.Finish(nil)
		return c, c.Name, nil
	})
	st.index = idx
	return st, err
}

// Put writes a container's record (for store.Object).
func (st *Store) Put(id string, b []byte) error { return st.index.Put(id, b) }

func (st *Store) reserve(c *Container) (*Container, bool, error) {
	b, err := c.Encode()
	if err != nil {
		return nil, false, err
	}
	// Attached first: once reserved, others may Update it.
	c.Attach(st, c.ID)
	return st.index.Reserve(c.ID, c.Name, c, b)
}

// Delete forgets a container.
func (st *Store) Delete(id string) error { return st.index.Delete(id) }

// Get finds a container by ID or unique ID prefix.
func (st *Store) Get(idOrPrefix string) (*Container, error) { return st.index.Get(idOrPrefix) }

// List returns every container, oldest first.
func (st *Store) List() []*Container {
	out := st.index.Values()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// InSandbox returns the containers of a sandbox.
func (st *Store) InSandbox(sandboxID string) []*Container {
	var out []*Container
	for _, c := range st.List() {
		if c.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}

func (st *Store) exists(id string) bool { return st.index.Exists(id) }

// MakeName is the unique container name kubelet's metadata maps to.
func MakeName(c *runtimeapi.ContainerMetadata, p *runtimeapi.PodSandboxMetadata) string {
	return strings.Join([]string{"k8s", c.GetName(), p.GetName(), p.GetNamespace(), p.GetUid(), fmt.Sprint(c.GetAttempt())}, "_")
}
