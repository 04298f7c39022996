package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// newNRIEnv is a pod environment whose daemon serves NRI on a socket of
// the test's own (never the node's /var/run/nri/nri.sock).
func newNRIEnv(t *testing.T, netIndex int) (*podEnv, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nri.sock")
	e := newPodEnv(t, netIndex, "[nri]", fmt.Sprintf("socket_path = %q", sock))
	return e, sock
}

// nriEvent is one request a test plugin received.
type nriEvent struct {
	kind      string // RunPodSandbox, CreateContainer, ...
	pod       *api.PodSandbox
	container *api.Container // nil for pod events
	// visible tells, for RunPodSandbox and CreateContainer, whether the
	// object could be seen through the CRI while the hook ran.
	visible bool
}

// nriPlugin is an NRI plugin (nri's stub) that records every event, in
// order, and can adjust or refuse what it is asked about.
type nriPlugin struct {
	e *podEnv // when set, hooks look through the CRI for the object

	mu     sync.Mutex
	events []nriEvent
	// Synchronize's snapshot.
	syncPods []*api.PodSandbox
	syncCtrs []*api.Container

	synced     chan struct{}
	syncedOnce sync.Once

	failRun    atomic.Bool
	failCreate atomic.Bool
	adjust     func(*api.Container) *api.ContainerAdjustment
}

func (p *nriPlugin) record(ev nriEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

// Events returns what the plugin received about one pod, oldest first.
func (p *nriPlugin) Events(podID string) []nriEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []nriEvent
	for _, ev := range p.events {
		if ev.pod.GetId() == podID {
			out = append(out, ev)
		}
	}
	return out
}

// Kinds names the events about one pod, with the container's name for
// container events: "CreateContainer worker".
func (p *nriPlugin) Kinds(podID string) []string {
	var out []string
	for _, ev := range p.Events(podID) {
		if ev.container != nil {
			out = append(out, ev.kind+" "+ev.container.GetName())
		} else {
			out = append(out, ev.kind)
		}
	}
	return out
}

func (p *nriPlugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	p.syncPods, p.syncCtrs = pods, ctrs
	p.mu.Unlock()
	p.syncedOnce.Do(func() { close(p.synced) })
	return nil, nil
}

func (p *nriPlugin) RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	visible := false
	if p.e != nil {
		list, err := p.e.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		visible = err != nil || slices.ContainsFunc(list.GetItems(), func(s *runtimeapi.PodSandbox) bool { return s.Id == pod.GetId() })
	}
	p.record(nriEvent{kind: "RunPodSandbox", pod: pod, visible: visible})
	if p.failRun.Load() {
		return errors.New("pod refused by the test plugin")
	}
	return nil
}

func (p *nriPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record(nriEvent{kind: "StopPodSandbox", pod: pod})
	return nil
}

func (p *nriPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record(nriEvent{kind: "RemovePodSandbox", pod: pod})
	return nil
}

func (p *nriPlugin) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	visible := false
	if p.e != nil {
		_, err := p.e.rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr.GetId()})
		visible = err == nil
	}
	p.record(nriEvent{kind: "CreateContainer", pod: pod, container: ctr, visible: visible})
	if p.failCreate.Load() {
		return nil, nil, errors.New("container refused by the test plugin")
	}
	if p.adjust != nil {
		return p.adjust(ctr), nil, nil
	}
	return nil, nil, nil
}

func (p *nriPlugin) PostCreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record(nriEvent{kind: "PostCreateContainer", pod: pod, container: ctr})
	return nil
}

func (p *nriPlugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record(nriEvent{kind: "StartContainer", pod: pod, container: ctr})
	return nil
}

func (p *nriPlugin) PostStartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record(nriEvent{kind: "PostStartContainer", pod: pod, container: ctr})
	return nil
}

func (p *nriPlugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	p.record(nriEvent{kind: "StopContainer", pod: pod, container: ctr})
	return nil, nil
}

func (p *nriPlugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record(nriEvent{kind: "RemoveContainer", pod: pod, container: ctr})
	return nil
}

// connect runs p as plugin idx-name on sock until the test ends, and
// returns once the daemon has synchronized it.
func (p *nriPlugin) connect(t *testing.T, sock, name, idx string) stub.Stub {
	t.Helper()
	p.synced = make(chan struct{})
	s, err := stub.New(p, stub.WithPluginName(name), stub.WithPluginIdx(idx), stub.WithSocketPath(sock))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("NRI plugin did not stop")
		}
	})
	select {
	case <-p.synced:
	case err := <-done:
		t.Fatalf("NRI plugin %s stopped before it was synchronized: %v", name, err)
	case <-time.After(15 * time.Second):
		t.Fatalf("NRI plugin %s was not synchronized in time", name)
	}
	return s
}

// TestNRIPluginSeesLifecycleInOrder: a plugin hears of a pod and its
// container at every step, in order, with the pod's and the container's
// identity, before either is visible through the CRI; a plugin that
// connects later is given what exists.
func TestNRIPluginSeesLifecycleInOrder(t *testing.T) {
	e, sock := newNRIEnv(t, 80)
	p := &nriPlugin{e: e}
	p.connect(t, sock, "recorder", "10")

	podID, podCfg, _ := e.pod(t, "nri-order")
	id := e.container(t, podID, podCfg, "worker", "sleep", "3600")
	e.start(t, id)
	e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)

	// A second plugin, connecting now, is synchronized with the pod and
	// its running container.
	late := &nriPlugin{}
	late.connect(t, sock, "late", "20")
	late.mu.Lock()
	syncPods, syncCtrs := late.syncPods, late.syncCtrs
	late.mu.Unlock()
	if !slices.ContainsFunc(syncPods, func(p *api.PodSandbox) bool { return p.GetId() == podID && p.GetName() == "nri-order" }) {
		t.Errorf("late plugin's Synchronize lacks pod %s: %v", podID, syncPods)
	}
	if !slices.ContainsFunc(syncCtrs, func(c *api.Container) bool {
		return c.GetId() == id && c.GetName() == "worker" && c.GetState() == api.ContainerState_CONTAINER_RUNNING && c.GetPid() > 0
	}) {
		t.Errorf("late plugin's Synchronize lacks running container %s: %v", id, syncCtrs)
	}

	if _, err := e.rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second stop is a no-op, and plugins are not told again
		if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"RunPodSandbox",
		"CreateContainer worker", "PostCreateContainer worker",
		"StartContainer worker", "PostStartContainer worker",
		"StopContainer worker", "RemoveContainer worker",
		"StopPodSandbox", "RemovePodSandbox",
	}
	if got := p.Kinds(podID); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	if got := late.Kinds(podID); !slices.Equal(got, want[5:]) {
		t.Errorf("late plugin's events:\n got %q\nwant %q", got, want[5:])
	}
	evs := p.Events(podID)
	run, create, start, stop := evs[0], evs[1], evs[3], evs[5]
	if run.visible || create.visible {
		t.Errorf("visible through the CRI while its hook ran: pod %v, container %v", run.visible, create.visible)
	}
	pod := run.pod
	if pod.GetName() != "nri-order" || pod.GetNamespace() != "test" || pod.GetUid() != "uid-nri-order" || pod.GetLabels()["app"] != "nri-order" {
		t.Errorf("pod metadata: %v", pod)
	}
	if pod.GetPid() == 0 || len(pod.GetIps()) == 0 {
		t.Errorf("RunPodSandbox comes once the pod runs with its network: pid %d, ips %v", pod.GetPid(), pod.GetIps())
	}
	if !slices.ContainsFunc(pod.GetLinux().GetNamespaces(), func(n *api.LinuxNamespace) bool { return n.Type == "network" && n.Path != "" }) {
		t.Errorf("pod namespaces: %v", pod.GetLinux().GetNamespaces())
	}
	c := create.container
	if c.GetId() != id || c.GetPodSandboxId() != podID || !slices.Equal(c.GetArgs(), []string{"sleep", "3600"}) || c.GetLinux().GetCgroupsPath() == "" {
		t.Errorf("CreateContainer's container: %v", c)
	}
	if start.container.GetState() != api.ContainerState_CONTAINER_CREATED {
		t.Errorf("StartContainer comes before the start: state %v", start.container.GetState())
	}
	if st := stop.container; st.GetState() != api.ContainerState_CONTAINER_STOPPED || st.GetFinishedAt() == 0 {
		t.Errorf("StopContainer comes once stopped: %v", st)
	}
	e.assertNothingLeft(t, []string{podID, id})
}

// TestNRIPluginAdjustsContainer: a plugin's adjustments at CreateContainer
// reach the container (an environment variable its process sees, an
// annotation in its spec), and a plugin's later update reaches the
// running container's limits.
func TestNRIPluginAdjustsContainer(t *testing.T) {
	e, sock := newNRIEnv(t, 81)
	p := &nriPlugin{adjust: func(c *api.Container) *api.ContainerAdjustment {
		a := &api.ContainerAdjustment{}
		a.AddEnv("NRI_INJECTED", "by-plugin")
		a.AddAnnotation("nri.test/adjusted", c.GetName())
		return a
	}}
	s := p.connect(t, sock, "adjuster", "10")

	podID, podCfg, _ := e.pod(t, "nri-adjust")
	id := e.container(t, podID, podCfg, "adjusted", "sleep", "3600")
	e.start(t, id)
	e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)

	res, err := e.rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"env"}, Timeout: 5})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("ExecSync env: %v %v", res, err)
	}
	if !slices.Contains(strings.Split(string(res.Stdout), "\n"), "NRI_INJECTED=by-plugin") {
		t.Errorf("the plugin's variable is not in the container's environment:\n%s", res.Stdout)
	}
	st, err := e.rs.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		RuntimeSpec struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatal(err)
	}
	if got := info.RuntimeSpec.Annotations["nri.test/adjusted"]; got != "adjusted" {
		t.Errorf("the plugin's annotation is not in the spec: %q (%v)", got, info.RuntimeSpec.Annotations)
	}

	// An update the plugin asks for on its own goes through the OCI
	// runtime and shows in ContainerStatus.
	upd := &api.ContainerUpdate{ContainerId: id, Linux: &api.LinuxContainerUpdate{Resources: &api.LinuxResources{
		Cpu: &api.LinuxCPU{Shares: api.UInt64(512)},
	}}}
	failed, err := s.UpdateContainers([]*api.ContainerUpdate{upd})
	if err != nil || len(failed) > 0 {
		t.Fatalf("UpdateContainers: failed %v, %v\n%s", failed, err, tail(e.d.Log(), 20))
	}
	st, err = e.rs.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Status.GetResources().GetLinux().GetCpuShares(); got != 512 {
		t.Errorf("CPU shares after the plugin's update: %d, want 512", got)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{podID, id})
}

// TestNRIRefusalFailsTheRPCAndLeavesNothing: a plugin that refuses a pod or
// a container fails RunPodSandbox or CreateContainer; nothing of the
// attempt is left (record, directories, monitor, runtime state, network),
// plugins that saw it are told it is gone, and the same request succeeds
// once the plugin accepts it.
func TestNRIRefusalFailsTheRPCAndLeavesNothing(t *testing.T) {
	e, sock := newNRIEnv(t, 82)
	p := &nriPlugin{}
	p.connect(t, sock, "refuser", "10")

	p.failRun.Store(true)
	_, err := e.rs.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("nri-refused")})
	if err == nil || !strings.Contains(err.Error(), "pod refused by the test plugin") {
		t.Fatalf("RunPodSandbox refused by a plugin: %v", err)
	}
	p.mu.Lock()
	refusedPod := p.events[len(p.events)-1].pod.GetId()
	p.mu.Unlock()
	if list, _ := e.rs.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{}); len(list.GetItems()) != 0 {
		t.Fatalf("refused pod listed: %v", list.GetItems())
	}
	e.assertNothingLeft(t, []string{refusedPod})
	if got, want := p.Kinds(refusedPod), []string{"RunPodSandbox", "StopPodSandbox", "RemovePodSandbox"}; !slices.Equal(got, want) {
		t.Errorf("events of the refused pod: %q, want %q", got, want)
	}
	p.failRun.Store(false)
	podCfg := podConfig("nri-refused")
	podCfg.LogDirectory = t.TempDir()
	podID := e.runPod(t, podCfg)

	p.failCreate.Store(true)
	if _, err := e.is.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.busybox}}); err != nil {
		t.Fatal(err)
	}
	req := &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "refused"},
		Image:    &runtimeapi.ImageSpec{Image: e.busybox},
		Command:  []string{"sleep", "3600"},
		LogPath:  "refused.log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}}
	if _, err := e.rs.CreateContainer(ctx(t), req); err == nil || !strings.Contains(err.Error(), "container refused by the test plugin") {
		t.Fatalf("CreateContainer refused by a plugin: %v", err)
	}
	var refused string
	for _, ev := range p.Events(podID) {
		if ev.kind == "CreateContainer" {
			refused = ev.container.GetId()
		}
	}
	if refused == "" {
		t.Fatal("the plugin was not asked about the container")
	}
	if list, _ := e.rs.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{}); len(list.GetContainers()) != 0 {
		t.Fatalf("refused container listed: %v", list.GetContainers())
	}
	if _, err := e.rs.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: refused}); err == nil {
		t.Error("refused container has a status")
	}
	if ents, _ := os.ReadDir(filepath.Join(e.d.State, "containers")); len(ents) != 0 {
		t.Errorf("container directories left: %d", len(ents))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, pr := range procs {
		if b, _ := os.ReadFile(pr); strings.Contains(string(b), refused) {
			t.Errorf("process of the refused container left: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	out, _ := exec.Command("runc", "--root", filepath.Join(e.d.State, "runtimes", "runc"), "list", "-q").Output()
	if strings.Contains(string(out), refused) {
		t.Errorf("refused container left in runc: %s", out)
	}
	want := []string{"RunPodSandbox", "CreateContainer refused", "StopContainer refused", "RemoveContainer refused"}
	if got := p.Kinds(podID); !slices.Equal(got, want) {
		t.Errorf("events: %q, want %q", got, want)
	}

	p.failCreate.Store(false)
	resp, err := e.rs.CreateContainer(ctx(t), req)
	if err != nil {
		t.Fatalf("CreateContainer once the plugin accepts: %v", err)
	}
	e.start(t, resp.ContainerId)
	e.waitState(t, resp.ContainerId, runtimeapi.ContainerState_CONTAINER_RUNNING)
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{podID, resp.ContainerId})
}
