package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/netns"
	"github.com/cri-rt/cri-rt/test/framework"
	"github.com/cri-rt/cri-rt/test/registry"
)

// podEnv is a daemon with a CNI bridge network and test images.
type podEnv struct {
	d       *framework.Daemon
	rs      runtimeapi.RuntimeServiceClient
	is      runtimeapi.ImageServiceClient
	net     *framework.Network
	busybox string
}

func newPodEnv(t *testing.T, netIndex int, extraConfig ...string) *podEnv {
	t.Helper()
	reg := registry.NewInProcess(t)
	pause, busybox := framework.TestImages(t, reg)
	n := framework.NewNetwork(t, netIndex)
	cfg := framework.ConfigWithImages(pause, n.ConfDir, extraConfig...)
	cfg = strings.Replace(cfg, `bin_dirs = [`, fmt.Sprintf(`bin_dirs = [%q, `, n.BinDir), 1)
	d := framework.NewDaemon(t, cfg)
	d.Start()
	rs, is := d.Clients()
	e := &podEnv{d: d, rs: rs, is: is, net: n, busybox: busybox}
	t.Cleanup(func() { e.removeAll(t) })
	return e
}

// removeAll removes every pod, so a failing test leaves nothing behind.
func (e *podEnv) removeAll(t *testing.T) {
	if err := e.d.WaitReady(time.Second); err != nil {
		return
	}
	list, err := e.rs.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, p := range list.Items {
		_, _ = e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
	}
}

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "test", Uid: "uid-" + name},
		Hostname: name,
		Labels:   map[string]string{"app": name},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func (e *podEnv) runPod(t *testing.T, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := e.rs.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v\n%s", cfg.Metadata.Name, err, tail(e.d.Log(), 30))
	}
	return resp.PodSandboxId
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type podInfo struct {
	Pid       int    `json:"pid"`
	NetnsPath string `json:"netnsPath"`
}

func (e *podEnv) status(t *testing.T, id string) (*runtimeapi.PodSandboxStatus, podInfo) {
	t.Helper()
	resp, err := e.rs.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info podInfo
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info: %v: %s", err, resp.Info["info"])
	}
	return resp.Status, info
}

// assertNothingLeft checks that no pod of this daemon left a netns, veth,
// IP reservation, mount, cgroup, monitor process or file.
func (e *podEnv) assertNothingLeft(t *testing.T, ids []string) {
	t.Helper()
	if r := e.net.Reservations(); len(r) > 0 {
		t.Errorf("IP reservations left: %v", r)
	}
	if v := e.net.Veths(); len(v) > 0 {
		t.Errorf("veths left: %v", v)
	}
	for _, sub := range []string{"netns", "sandboxes"} {
		if ents, _ := os.ReadDir(filepath.Join(e.d.State, sub)); len(ents) > 0 {
			t.Errorf("%s left: %d entries", sub, len(ents))
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, e.d.Dir) && !strings.Contains(l, filepath.Join(e.d.Root, "snapshots")+" ") {
			t.Errorf("mount left: %s", l)
		}
	}
	for _, id := range ids {
		for _, ctrl := range []string{"memory", "cpu,cpuacct", "pids"} {
			matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctrl, "*", id))
			if len(matches) > 0 {
				t.Errorf("cgroup left: %v", matches)
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "cri-rt-monitor") && strings.Contains(string(b), e.d.Dir) {
			t.Errorf("monitor left: %s %s", p, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func TestPodsGetDistinctIPsAndTalk(t *testing.T) {
	e := newPodEnv(t, 1)
	a := e.runPod(t, podConfig("a"))
	b := e.runPod(t, podConfig("b"))
	sa, ia := e.status(t, a)
	sb, ib := e.status(t, b)
	if sa.State != runtimeapi.PodSandboxState_SANDBOX_READY || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("states %v %v", sa.State, sb.State)
	}
	ipA, ipB := sa.GetNetwork().GetIp(), sb.GetNetwork().GetIp()
	if ipA == "" || ipB == "" || ipA == ipB || !strings.HasPrefix(ipA, "10.97.1.") {
		t.Fatalf("pod IPs %q %q", ipA, ipB)
	}
	if ia.Pid == 0 || ia.NetnsPath == "" {
		t.Fatalf("verbose info %+v", ia)
	}
	// A TCP server in pod a's network namespace, a client in pod b's.
	var ln net.Listener
	if err := netns.Do(ia.NetnsPath, func() (err error) { ln, err = net.Listen("tcp", ipA+":8080"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			fmt.Fprintf(c, "hello from %s\n", ipA)
			c.Close()
		}
	}()
	var got string
	if err := netns.Do(ib.NetnsPath, func() error {
		c, err := net.DialTimeout("tcp", ipA+":8080", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = bufio.NewReader(c).ReadString('\n')
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got != "hello from "+ipA+"\n" {
		t.Fatalf("got %q", got)
	}
	ln.Close()
	for _, id := range []string{a, b} {
		if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
		st, _ := e.status(t, id)
		if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.GetNetwork().GetIp() != "" {
			t.Fatalf("after stop: %+v", st)
		}
		// Stop is idempotent.
		if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Unknown IDs: stop and remove succeed.
	if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: a}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{a, b})
}

func TestHostPortReachesPod(t *testing.T) {
	e := newPodEnv(t, 2)
	cfg := podConfig("web")
	cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 18080}}
	id := e.runPod(t, cfg)
	st, info := e.status(t, id)
	var ln net.Listener
	if err := netns.Do(info.NetnsPath, func() (err error) { ln, err = net.Listen("tcp", st.Network.Ip+":80"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "pong\n")
			c.Close()
		}
	}()
	// The bridge's address is this host's own: its hostPort is DNATed to the pod.
	c, err := net.DialTimeout("tcp", e.net.Gateway+":18080", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "pong\n" {
		t.Fatalf("through the hostPort: %q %v", line, err)
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{id})
}

func TestHostNetworkPod(t *testing.T) {
	e := newPodEnv(t, 3)
	cfg := podConfig("hostnet")
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	id := e.runPod(t, cfg)
	st, info := e.status(t, id)
	if info.NetnsPath != "" || st.GetNetwork().GetIp() != "" {
		t.Fatalf("host network pod got a netns or IP: %+v %+v", info, st.Network)
	}
	own, _ := os.Readlink("/proc/self/ns/net")
	pods, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", info.Pid))
	if err != nil || pods != own {
		t.Fatalf("pause netns %q, host %q (%v)", pods, own, err)
	}
	if len(e.net.Reservations()) != 0 {
		t.Fatal("a host network pod took an IP")
	}
	if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(t, []string{id})
}

func TestCNIFailureLeavesNothing(t *testing.T) {
	e := newPodEnv(t, 4)
	for _, tc := range []struct{ name, plugin, want string }{
		{"missing plugin binary", "no-such-plugin", "no-such-plugin"},
		{"plugin that fails", "failing-plugin", "boom from failing-plugin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"boom from failing-plugin\"}'\nexit 1\n"
			os.WriteFile(filepath.Join(e.net.BinDir, "failing-plugin"), []byte(script), 0o755)
			e.net.WriteConf(t, tc.plugin)
			_, err := e.rs.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("broken")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
			list, _ := e.rs.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
			if len(list.Items) != 0 {
				t.Fatalf("failed sandbox listed: %v", list.Items)
			}
			e.assertNothingLeft(t, nil)
		})
	}
	// Fixed config: the same pod now runs (its name was not left reserved).
	e.net.WriteConf(t, "bridge")
	id := e.runPod(t, podConfig("broken"))
	e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
}

func TestRunPodSandboxRetryGetsSameID(t *testing.T) {
	e := newPodEnv(t, 5)
	slow := "#!/bin/sh\nsleep 1\nexec /usr/lib/cni/bridge \"$@\"\n"
	os.WriteFile(filepath.Join(e.net.BinDir, "slow-bridge"), []byte(slow), 0o755)
	e.net.WriteConf(t, "slow-bridge")
	cfg := podConfig("slow")
	ids := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 200 * time.Millisecond)
			resp, err := e.rs.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
			ids[i], errs[i] = resp.GetPodSandboxId(), err
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("retries: ids %v errs %v", ids, errs)
		}
	}
	// The same name with another configuration is a different pod: refused.
	other := podConfig("slow")
	other.Labels = map[string]string{"different": "yes"}
	if _, err := e.rs.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: other}); err == nil || !strings.Contains(err.Error(), "AlreadyExists") && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("clashing name: %v", err)
	}
}

func TestManyPodsConvergeAndLeaveNothing(t *testing.T) {
	e := newPodEnv(t, 6)
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.runPod(t, podConfig(fmt.Sprintf("many-%d", i)))
	}
	// Half of them lose their pause process behind the runtime's back.
	for i := 0; i < n; i += 2 {
		_, info := e.status(t, ids[i])
		if err := syscall.Kill(info.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n; i += 2 {
		for {
			st, _ := e.status(t, ids[i])
			if st.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod %d still READY after its pause was killed", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, id := range ids {
		if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNothingLeft(t, ids)
}

func TestCrictlPodCommands(t *testing.T) {
	e := newPodEnv(t, 7)
	dir := t.TempDir()
	pod := filepath.Join(dir, "pod.json")
	os.WriteFile(pod, []byte(`{"metadata":{"name":"crictl-pod","namespace":"default","uid":"crictl-uid","attempt":1},"hostname":"crictl-pod","labels":{"tier":"web"},"log_directory":"`+dir+`","linux":{}}`), 0o644)
	out, err := e.d.Crictl(t, "runp", pod)
	if err != nil {
		t.Fatalf("crictl runp: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	out, err = e.d.Crictl(t, "pods", "--label", "tier=web")
	if err != nil || !strings.Contains(out, id[:13]) || !strings.Contains(out, "Ready") || !strings.Contains(out, "crictl-pod") {
		t.Fatalf("crictl pods: %v\n%s", err, out)
	}
	out, err = e.d.Crictl(t, "inspectp", id)
	if err != nil || !strings.Contains(out, `"state": "SANDBOX_READY"`) || !strings.Contains(out, `"netnsPath"`) || !strings.Contains(out, "10.97.7.") {
		t.Fatalf("crictl inspectp: %v\n%s", err, out)
	}
	if out, err = e.d.Crictl(t, "stopp", id); err != nil {
		t.Fatalf("crictl stopp: %v\n%s", err, out)
	}
	out, _ = e.d.Crictl(t, "pods", "--state", "notready")
	if !strings.Contains(out, id[:13]) {
		t.Fatalf("stopped pod not listed as NotReady:\n%s", out)
	}
	if out, err = e.d.Crictl(t, "rmp", id); err != nil {
		t.Fatalf("crictl rmp: %v\n%s", err, out)
	}
	out, _ = e.d.Crictl(t, "pods", "-q")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("pods after rmp: %q", out)
	}
	e.assertNothingLeft(t, []string{id})
}

func TestSandboxesSurviveRestart(t *testing.T) {
	e := newPodEnv(t, 8)
	keep := e.runPod(t, podConfig("keep"))
	lose := e.runPod(t, podConfig("lose"))
	_, keepInfo := e.status(t, keep)
	_, loseInfo := e.status(t, lose)
	e.d.Kill()
	// While the daemon is down, one pause dies.
	syscall.Kill(loseInfo.Pid, syscall.SIGKILL)
	e.d.Start()
	e.rs, e.is = e.d.Clients()
	st, info := e.status(t, keep)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || info.Pid != keepInfo.Pid || syscall.Kill(info.Pid, 0) != nil {
		t.Fatalf("live sandbox after restart: %v pid %d", st.State, info.Pid)
	}
	st, _ = e.status(t, lose)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("sandbox whose pause died while down: %v", st.State)
	}
	// The restarted daemon still watches the live one.
	syscall.Kill(info.Pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := e.status(t, keep); st.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("death of pause after restart not noticed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{keep, lose} {
		if _, err := e.rs.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNothingLeft(t, []string{keep, lose})
}

func TestUpdatePodSandboxResourcesIsRecorded(t *testing.T) {
	e := newPodEnv(t, 9)
	id := e.runPod(t, podConfig("resize"))
	_, err := e.rs.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: id, Resources: &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 128 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.rs.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil || !strings.Contains(resp.Info["info"], `"cpuShares":"512"`) {
		t.Fatalf("resources not recorded: %v %s", err, resp.GetInfo()["info"])
	}
	if _, err := e.rs.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "nope"}); err == nil {
		t.Fatal("unknown sandbox accepted")
	}
}
