package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pod runs a sandbox whose logs go to a temp dir and returns its ID, config
// and log dir.
func (e *podEnv) pod(t *testing.T, name string) (string, *runtimeapi.PodSandboxConfig, string) {
	t.Helper()
	cfg := podConfig(name)
	cfg.LogDirectory = t.TempDir()
	return e.runPod(t, cfg), cfg, cfg.LogDirectory
}

func (e *podEnv) container(t *testing.T, podID string, podCfg *runtimeapi.PodSandboxConfig, name string, cmd ...string) string {
	t.Helper()
	if _, err := e.is.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.busybox}}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.rs.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: podCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: e.busybox},
			Command:  cmd,
			LogPath:  name + ".log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
	})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v\n%s", name, err, tail(e.d.Log(), 20))
	}
	return resp.ContainerId
}

func (e *podEnv) waitState(t *testing.T, id string, want runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.rs.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status.State == want {
			return resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is %v, want %v", id, resp.Status.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var criLogLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (stdout|stderr) (P|F) (.*)$`)

func TestContainerLifecycleAndLogs(t *testing.T) {
	e := newPodEnv(t, 10)
	podID, podCfg, logDir := e.pod(t, "lifecycle")
	id := e.container(t, podID, podCfg, "c1", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
	st := e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_CREATED)
	if st.CreatedAt == 0 || st.StartedAt != 0 || st.LogPath != filepath.Join(logDir, "c1.log") {
		t.Fatalf("created status %+v", st)
	}
	if _, err := e.rs.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	st = e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 3 || st.Reason != "Error" || st.FinishedAt == 0 || st.StartedAt == 0 || !strings.HasPrefix(st.ImageRef, "") || st.ImageId == "" {
		t.Fatalf("exited status %+v", st)
	}
	b, err := os.ReadFile(st.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var out, errs []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := criLogLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI log line: %q", l)
		}
		if m[1] == "stdout" {
			out = append(out, m[3])
		} else {
			errs = append(errs, m[3])
		}
	}
	if strings.Join(out, ",") != "to-out" || strings.Join(errs, ",") != "to-err" {
		t.Fatalf("log: stdout %v stderr %v", out, errs)
	}
	list, err := e.rs.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	if err != nil || len(list.Containers) != 1 || list.Containers[0].Id != id {
		t.Fatalf("ListContainers %v %v", list, err)
	}
	if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{podID, id})
}

func TestExecSyncAndStop(t *testing.T) {
	e := newPodEnv(t, 11)
	podID, podCfg, _ := e.pod(t, "exec")
	id := e.container(t, podID, podCfg, "sleeper", "sleep", "3600")
	if _, err := e.rs.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	res, err := e.rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo hi; exit 7"}, Timeout: 5})
	if err != nil || string(res.Stdout) != "hi\n" || res.ExitCode != 7 {
		t.Fatalf("ExecSync: %+v %v", res, err)
	}
	for _, cmd := range [][]string{{"sleep", "60"}, {"sh", "-c", "sleep 60 & sleep 61"}} {
		start := time.Now()
		_, err := e.rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 2})
		if took := time.Since(start); err == nil || took > 3*time.Second {
			t.Fatalf("ExecSync %v with a 2 s timeout: err %v after %s", cmd, err, took)
		}
	}
	start := time.Now()
	if _, err := e.rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	st := e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 143 && st.ExitCode != 137 {
		t.Fatalf("stopped sleep exit code %d", st.ExitCode)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatal("stop took too long")
	}
	if _, err := e.rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
		t.Fatalf("stopping twice: %v", err)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{podID, id})
}
