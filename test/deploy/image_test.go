package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/test/framework"
	"github.com/cri-rt/cri-rt/test/registry"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// buildInstallerImage builds deploy/image with go build and runs it: the
// command operators use, flags included. It returns the pushed reference.
func buildInstallerImage(t *testing.T, bin, ref string) string {
	t.Helper()
	tool := filepath.Join(t.TempDir(), "image")
	if out, err := exec.Command("go", "build", "-o", tool, "github.com/cri-rt/cri-rt/deploy/image").CombinedOutput(); err != nil {
		t.Fatalf("building deploy/image: %v\n%s", err, out)
	}
	cmd := exec.Command(tool, "--bin", bin, "--deploy", filepath.Join(repo, "deploy"), "--image", ref)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("deploy/image: %v\n%s", err, out)
	}
	pushed := strings.TrimSpace(string(out))
	if !strings.HasPrefix(pushed, ref+"@sha256:") {
		t.Fatalf("deploy/image printed %q", pushed)
	}
	return pushed
}

// TestInstallerImageAsPod is the DaemonSet's pod, run by cri-rt itself:
// the installer image is built, pushed to an in-process registry and
// pulled through the CRI; a pod is created from the DaemonSet's own pod
// spec (host network and PID, privileged, its command, its hostPath
// mounts redirected into a scratch "host"), and the test plays kubelet:
// it runs the readiness probe with ExecSync until it passes, checks what
// landed in the scratch host, and stops the pod (the container's TERM trap
// must end it at once).
func TestInstallerImageAsPod(t *testing.T) {
	bin := binDir(t)
	reg := registry.NewInProcess(t)
	pause, _ := framework.TestImages(t, reg)
	ref := buildInstallerImage(t, bin, reg.Host+"/cri-rt-installer:test")
	// Reproducible: a rebuild of the same inputs has the same digest.
	if again := buildInstallerImage(t, bin, reg.Host+"/cri-rt-installer:again"); strings.Split(again, "@")[1] != strings.Split(ref, "@")[1] {
		t.Errorf("rebuild digest %s != %s", again, ref)
	}

	n := framework.NewNetwork(t, 201)
	d := framework.NewDaemon(t, framework.ConfigWithImages(pause, n.ConfDir))
	d.Start()
	rs, is := d.Clients()
	pulled, err := is.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("PullImage %s: %v", ref, err)
	}

	ds := loadDaemonSet(t)
	spec := &ds.Spec.Template.Spec
	c := &spec.Containers[0]
	host := t.TempDir() // the node's "/" for the hostPath volumes
	var mounts []*runtimeapi.Mount
	for hostPath, ctrPath := range hostMounts(t, spec, c) {
		src := filepath.Join(host, hostPath)
		if hostPath == "/run/cri-rt" {
			// The daemon's state dir holds its socket (cri-rt.sock), as
			// /run/cri-rt does on a node: the probe dials the daemon that
			// runs it.
			src = d.State
		}
		if err := os.MkdirAll(src, 0o755); err != nil { // DirectoryOrCreate
			t.Fatal(err)
		}
		mounts = append(mounts, &runtimeapi.Mount{HostPath: src, ContainerPath: ctrPath})
	}
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	}
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: ds.Name + "-test", Namespace: ds.Namespace, Uid: "uid-installer"},
		Hostname:     "node",
		LogDirectory: t.TempDir(),
		Labels:       ds.Spec.Template.Labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			Privileged: privileged, NamespaceOptions: ns,
		}},
	}
	pod, err := rs.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n%s", err, d.Log())
	}
	t.Cleanup(func() {
		_, _ = rs.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId})
	})
	created, err := rs.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId, SandboxConfig: podCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: c.Name},
			Image:    &runtimeapi.ImageSpec{Image: pulled.ImageRef},
			Command:  c.Command,
			Args:     c.Args,
			Mounts:   mounts,
			LogPath:  c.Name + ".log",
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Privileged: privileged, NamespaceOptions: ns,
			}},
		},
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\n%s", err, d.Log())
	}
	id := created.ContainerId
	if _, err := rs.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	logPath := filepath.Join(podCfg.LogDirectory, c.Name+".log")
	containerLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	// kubelet's readiness probe: the probe's command, via ExecSync.
	probe := c.ReadinessProbe.Exec.Command
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := rs.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Fatalf("installer container exited %d:\n%s", st.Status.ExitCode, containerLog())
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			res, err := rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: probe, Timeout: int64(c.ReadinessProbe.TimeoutSeconds)})
			if err == nil && res.ExitCode == 0 && strings.HasPrefix(string(res.Stdout), "OK") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("readiness probe never passed: %+v %v\ncontainer log:\n%s", res, err, containerLog())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The probe can pass as soon as install.sh has written the config,
	// a moment before the script's last line reaches the log.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(containerLog(), "installed; waiting") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("container log:\n%s", containerLog())
	if !strings.Contains(containerLog(), "installed; waiting") {
		t.Errorf("the installer's last line never reached the log:\n%s", containerLog())
	}

	// What the pod put on the "host".
	h := func(p string) string { return filepath.Join(host, p) }
	sameFile(t, filepath.Join(bin, "cri-rt"), h("usr/local/bin/cri-rt"))
	sameFile(t, filepath.Join(bin, "cri-rt-monitor"), h("usr/local/bin/cri-rt-monitor"))
	sameFile(t, deployPath("cri-rt.service"), h("etc/systemd/system/cri-rt.service"))
	def, err := exec.Command(filepath.Join(bin, "cri-rt"), "config", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, h("etc/cri-rt/config.toml")) != string(def) {
		t.Error("the pod's config.toml is not `cri-rt config default`")
	}
	manifest := readFile(t, h("etc/cri-rt/install-manifest"))
	for _, p := range []string{"/usr/local/bin/cri-rt\n", "/etc/cri-rt/config.toml\n", "/etc/systemd/system/cri-rt.service\n"} {
		if !strings.Contains(manifest, p) {
			t.Errorf("manifest lacks %s:\n%s", p, manifest)
		}
	}
	// No systemd on the scratch host: nothing may have been enabled.
	if _, err := os.Stat(h("etc/systemd/system/multi-user.target.wants")); err == nil {
		t.Error("the unit was enabled on a host without systemd")
	}

	// kubelet stops the pod with a 5 s grace period: the trap must make
	// the shell exit 0 on SIGTERM well before the SIGKILL.
	grace := int64(30) // kubelet's default
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	start := time.Now()
	if _, err := rs.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: grace}); err != nil {
		t.Fatal(err)
	}
	st, err := rs.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.ExitCode != 0 || time.Since(start) > 4*time.Second {
		t.Errorf("stop: exit %d after %s (want 0, promptly)\n%s", st.Status.ExitCode, time.Since(start), containerLog())
	}
	if _, err := rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
}
