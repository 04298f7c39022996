package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// createWith creates a busybox container with a customised config.
func (e *podEnv) createWith(t *testing.T, podID string, podCfg *runtimeapi.PodSandboxConfig, name string, mutate func(*runtimeapi.ContainerConfig), cmd ...string) string {
	t.Helper()
	if _, err := e.is.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.busybox}}); err != nil {
		t.Fatal(err)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: e.busybox},
		Command:  cmd,
		LogPath:  name + ".log",
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
	}
	if mutate != nil {
		mutate(cfg)
	}
	resp, err := e.rs.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg, Config: cfg})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	return resp.ContainerId
}

func (e *podEnv) start(t *testing.T, id string) {
	t.Helper()
	if _, err := e.rs.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
}

// runToExit creates, starts and waits for a container and returns its status.
func (e *podEnv) runToExit(t *testing.T, podID string, podCfg *runtimeapi.PodSandboxConfig, name string, mutate func(*runtimeapi.ContainerConfig), cmd ...string) *runtimeapi.ContainerStatus {
	t.Helper()
	id := e.createWith(t, podID, podCfg, name, mutate, cmd...)
	e.start(t, id)
	return e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
}

func logContent(t *testing.T, path string) (stdout string, records []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := criLogLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI log line: %.100q", l)
		}
		records = append(records, m[1]+" "+m[2])
		if m[1] != "stdout" {
			continue // streams are separate pipes: their order is not defined
		}
		out.WriteString(m[3])
		if m[2] == "F" {
			out.WriteString("\n")
		}
	}
	return out.String(), records
}

func TestExitCodesAndReasons(t *testing.T) {
	e := newPodEnv(t, 12)
	podID, podCfg, _ := e.pod(t, "exits")
	for _, tc := range []struct {
		name   string
		mutate func(*runtimeapi.ContainerConfig)
		cmd    []string
		code   int32
		reason string
	}{
		{"ok", nil, []string{"true"}, 0, "Completed"},
		{"fail", nil, []string{"sh", "-c", "exit 1"}, 1, "Error"},
		{"killed", nil, []string{"sh", "-c", "kill -9 $$"}, 137, "Error"},
		{"oom", func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
		}, []string{"sh", "-c", "x=$(yes | head -c 134217728); echo ${#x}"}, 137, "OOMKilled"},
	} {
		st := e.runToExit(t, podID, podCfg, tc.name, tc.mutate, tc.cmd...)
		if st.ExitCode != tc.code || st.Reason != tc.reason {
			t.Errorf("%s: exit %d reason %q, want %d %q", tc.name, st.ExitCode, st.Reason, tc.code, tc.reason)
		}
	}
}

func TestLongLinesAndLogReopen(t *testing.T) {
	e := newPodEnv(t, 13)
	podID, podCfg, _ := e.pod(t, "logs")
	id := e.createWith(t, podID, podCfg, "talker", nil, "sh", "-c",
		"head -c 20480 /dev/zero | tr '\\0' x; echo; echo err-line >&2; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.05; done")
	e.start(t, id)
	st := e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	time.Sleep(300 * time.Millisecond)
	out, records := logContent(t, st.LogPath)
	if !strings.HasPrefix(out, strings.Repeat("x", 20480)+"\n") {
		t.Fatalf("the 20 KiB line is not intact: %d bytes before the first newline; records %v", strings.Index(out, "\n"), records[:min(6, len(records))])
	}
	if !contains(records, "stdout P") || !contains(records, "stdout F") || !contains(records, "stderr F") {
		t.Fatalf("records %v", records[:min(5, len(records))])
	}
	// Rotation as kubelet does it: rename, then ReopenContainerLog.
	rotated := st.LogPath + ".1"
	if err := os.Rename(st.LogPath, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.ReopenContainerLog(ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	newOut, _ := logContent(t, st.LogPath)
	if !strings.Contains(newOut, "tick-") {
		t.Fatalf("no new lines in the reopened log: %q", newOut)
	}
	oldOut, _ := logContent(t, rotated)
	lastOld := strings.Fields(strings.ReplaceAll(oldOut, "\n", " "))
	firstNew := strings.Fields(strings.ReplaceAll(newOut, "\n", " "))[0]
	var lo, fn int
	fmt.Sscanf(lastOld[len(lastOld)-1], "tick-%d", &lo)
	fmt.Sscanf(firstNew, "tick-%d", &fn)
	if fn != lo+1 {
		t.Fatalf("lines lost or duplicated across the reopen: old ends at %d, new starts at %d", lo, fn)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSecurityFromInside(t *testing.T) {
	e := newPodEnv(t, 14)
	podID, podCfg, _ := e.pod(t, "security")
	hostDir := t.TempDir()
	for _, tc := range []struct {
		name   string
		mutate func(*runtimeapi.ContainerConfig)
		script string
	}{
		{"readonly rootfs", func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.ReadonlyRootfs = true },
			"touch /x 2>/dev/null && exit 1; exit 0"},
		{"run as user", func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.RunAsUsername = "app" },
			"[ $(id -u) = 1000 ] && [ $(id -g) = 1000 ] && id -G | grep -qw 2000"},
		{"dropped capability", func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"CHOWN"}}
		}, "touch /tmp/f && chown 1:1 /tmp/f 2>/dev/null && exit 1; exit 0"},
		{"no new privs", func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.NoNewPrivs = true },
			"grep -q 'NoNewPrivs:.*1' /proc/self/status"},
		{"bind mount", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{HostPath: hostDir, ContainerPath: "/data", Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE}}
		}, "echo from-container > /data/f"},
	} {
		st := e.runToExit(t, podID, podCfg, strings.ReplaceAll(tc.name, " ", "-"), tc.mutate, "sh", "-c", tc.script)
		if st.ExitCode != 0 {
			b, _ := os.ReadFile(st.LogPath)
			t.Errorf("%s: exit %d\n%s", tc.name, st.ExitCode, b)
		}
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "f")); err != nil || string(b) != "from-container\n" {
		t.Fatalf("bind mount write: %q %v", b, err)
	}
}

func TestMountPropagationFromHost(t *testing.T) {
	e := newPodEnv(t, 15)
	podCfg := podConfig("propagation")
	podCfg.LogDirectory = t.TempDir()
	podCfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	podID := e.runPod(t, podCfg)
	// rslave needs a shared source: make a shared mount point.
	src := t.TempDir()
	if err := syscall.Mount(src, src, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(src, syscall.MNT_DETACH)
	if err := syscall.Mount("", src, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	id := e.createWith(t, podID, podCfg, "slave", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.Privileged = true
		c.Mounts = []*runtimeapi.Mount{{HostPath: src, ContainerPath: "/mnt/src", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
	}, "sh", "-c", "while [ ! -f /mnt/src/sub/marker ]; do sleep 0.05; done; echo seen")
	e.start(t, id)
	e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	// A mount made on the host after the start must show up inside.
	sub := filepath.Join(src, "sub")
	os.MkdirAll(sub, 0o755)
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "marker"), []byte("x"), 0o644)
	if err := syscall.Mount(tmp, sub, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(sub, syscall.MNT_DETACH)
	st := e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 0 {
		t.Fatalf("exit %d", st.ExitCode)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
}

func TestContainersSurviveDaemonKill(t *testing.T) {
	e := newPodEnv(t, 16)
	podID, podCfg, _ := e.pod(t, "survive")
	var ids []string
	for i := 0; i < 5; i++ {
		id := e.createWith(t, podID, podCfg, fmt.Sprintf("c%d", i), nil, "sh", "-c", "i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.05; done")
		e.start(t, id)
		ids = append(ids, id)
	}
	quitter := e.createWith(t, podID, podCfg, "quitter", nil, "sh", "-c", "sleep 1; exit 4")
	e.start(t, quitter)
	for _, id := range ids {
		e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	}
	e.d.Kill()
	time.Sleep(1500 * time.Millisecond) // the quitter exits while the daemon is down
	e.d.Start()
	e.rs, e.is = e.d.Clients()
	for _, id := range ids {
		st := e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
		out, _ := logContent(t, st.LogPath)
		lines := strings.Fields(out)
		for i, l := range lines {
			if l != fmt.Sprintf("line-%d", i+1) {
				t.Fatalf("log of %s not continuous at %d: %q", id, i, l)
			}
		}
		if len(lines) < 30 {
			t.Fatalf("log of %s has only %d lines: the container stopped logging", id, len(lines))
		}
	}
	if st := e.waitState(t, quitter, runtimeapi.ContainerState_CONTAINER_EXITED); st.ExitCode != 4 || st.Reason != "Error" {
		t.Fatalf("container that exited while down: %d %q", st.ExitCode, st.Reason)
	}
	res, err := e.rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: ids[0], Cmd: []string{"echo", "alive"}, Timeout: 5})
	if err != nil || string(res.Stdout) != "alive\n" {
		t.Fatalf("exec after restart: %v %v", res, err)
	}
	for _, id := range append(ids, quitter) {
		if _, err := e.rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, append(ids, quitter, podID))
}

func TestHundredContainersLeaveNothing(t *testing.T) {
	e := newPodEnv(t, 17)
	podID, podCfg, _ := e.pod(t, "hundred")
	var ids []string
	for i := 0; i < 100; i++ {
		id := e.createWith(t, podID, podCfg, fmt.Sprintf("n%d", i), nil, "sleep", "3600")
		e.start(t, id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := e.rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.d.State, "containers")); len(ents) != 0 {
		t.Fatalf("%d container dirs left", len(ents))
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, append(ids, podID))
}

func TestCrictlContainerCommands(t *testing.T) {
	e := newPodEnv(t, 18)
	dir := t.TempDir()
	pod := filepath.Join(dir, "pod.json")
	ctr := filepath.Join(dir, "ctr.json")
	os.WriteFile(pod, []byte(`{"metadata":{"name":"cp","namespace":"default","uid":"cp-uid"},"log_directory":"`+dir+`","linux":{}}`), 0o644)
	os.WriteFile(ctr, []byte(`{"metadata":{"name":"web"},"image":{"image":"`+e.busybox+`"},"command":["sh","-c","echo hello-log; sleep 3600"],"log_path":"web.log","linux":{}}`), 0o644)
	run := func(args ...string) string {
		t.Helper()
		out, err := e.d.Crictl(t, args...)
		if err != nil {
			t.Fatalf("crictl %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("pull", e.busybox)
	podID := strings.TrimSpace(run("runp", pod))
	id := strings.TrimSpace(run("create", podID, ctr, pod))
	run("start", id)
	if out := run("ps"); !strings.Contains(out, id[:13]) || !strings.Contains(out, "Running") {
		t.Fatalf("crictl ps:\n%s", out)
	}
	if out := run("inspect", id); !strings.Contains(out, `"state": "CONTAINER_RUNNING"`) {
		t.Fatalf("crictl inspect:\n%s", out)
	}
	time.Sleep(200 * time.Millisecond)
	if out := run("logs", id); !strings.Contains(out, "hello-log") {
		t.Fatalf("crictl logs: %q", out)
	}
	if out := run("exec", "--sync", id, "echo", "exec-ok"); strings.TrimSpace(out) != "exec-ok" {
		t.Fatalf("crictl exec: %q", out)
	}
	if out := run("stats", id); !strings.Contains(out, id[:13]) {
		t.Fatalf("crictl stats:\n%s", out)
	}
	run("update", "--memory", "67108864", id)
	if out := run("inspect", id); !strings.Contains(out, `"memoryLimitInBytes": "67108864"`) && !strings.Contains(out, `"memoryLimitInBytes": 67108864`) {
		t.Fatalf("crictl update not reflected:\n%s", out)
	}
	run("stop", "--timeout", "1", id)
	run("rm", id)
	run("rmp", "-f", podID)
	e.assertNothingLeft(t, []string{podID, id})
}

func TestCheckpointNamesWhatIsMissing(t *testing.T) {
	e := newPodEnv(t, 22)
	podID, podCfg, _ := e.pod(t, "ckpt")
	id := e.createWith(t, podID, podCfg, "sleeper", nil, "sleep", "3600")
	e.start(t, id)
	e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	archive := filepath.Join(t.TempDir(), "ckpt.tar")
	_, err := e.rs.CheckpointContainer(ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: archive})
	if err == nil {
		// CRIU works here: the archive must hold CRIU images.
		b, rerr := os.ReadFile(archive)
		if rerr != nil || !strings.Contains(string(b), "checkpoint/") {
			t.Fatalf("checkpoint archive: %v", rerr)
		}
		return
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CRIU") {
		t.Fatalf("want FailedPrecondition naming CRIU, got %v", err)
	}
	t.Logf("checkpoint unavailable here: %v", err)
	if _, err := e.rs.CheckpointContainer(ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: "relative"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("relative location: %v", err)
	}
}
