package preflight

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-rt/cri-rt/pkg/config"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func opts(t *testing.T) *Options {
	o := &Options{Config: config.Default()}
	o.defaults()
	return o
}

func TestIPForwardAndBrNetfilter(t *testing.T) {
	o := opts(t)
	o.ProcSys = t.TempDir()
	writeFile(t, filepath.Join(o.ProcSys, "net/ipv4/ip_forward"), "0\n", 0o644)
	if r := checkIPForward(o); r.Status != Fail || r.Fix == "" {
		t.Errorf("ip_forward=0: %+v", r)
	}
	writeFile(t, filepath.Join(o.ProcSys, "net/ipv4/ip_forward"), "1\n", 0o644)
	if r := checkIPForward(o); r.Status != OK {
		t.Errorf("ip_forward=1: %+v", r)
	}
	if r := checkBrNetfilter(o); r.Status != Fail || !strings.Contains(r.Detail, "not loaded") {
		t.Errorf("no net/bridge: %+v", r)
	}
	writeFile(t, filepath.Join(o.ProcSys, "net/bridge/bridge-nf-call-iptables"), "0\n", 0o644)
	writeFile(t, filepath.Join(o.ProcSys, "net/bridge/bridge-nf-call-ip6tables"), "0\n", 0o644)
	if r := checkBrNetfilter(o); r.Status != Fail {
		t.Errorf("iptables=0: %+v", r)
	}
	writeFile(t, filepath.Join(o.ProcSys, "net/bridge/bridge-nf-call-iptables"), "1\n", 0o644)
	if r := checkBrNetfilter(o); r.Status != Warn {
		t.Errorf("ip6tables=0: %+v", r)
	}
	writeFile(t, filepath.Join(o.ProcSys, "net/bridge/bridge-nf-call-ip6tables"), "1\n", 0o644)
	if r := checkBrNetfilter(o); r.Status != OK {
		t.Errorf("both 1: %+v", r)
	}
}

func TestRuntimes(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-runc")
	writeFile(t, fake, "#!/bin/sh\necho 'fake-runc version 9.9'\necho 'spec: 1.3.0'\n", 0o755)
	o := opts(t)
	o.Config.Runtimes = map[string]config.RuntimeHandler{
		"runc": {Path: fake},
		"crun": {Path: filepath.Join(dir, "missing-crun")},
	}
	rs := checkRuntimes(context.Background(), o)
	if len(rs) != 2 {
		t.Fatalf("%+v", rs)
	}
	// Sorted by name: crun first. A missing extra handler is a WARN.
	if rs[0].Check != "runtime crun" || rs[0].Status != Warn {
		t.Errorf("missing extra handler: %+v", rs[0])
	}
	if rs[1].Check != "runtime runc (default)" || rs[1].Status != OK || !strings.Contains(rs[1].Detail, "fake-runc version 9.9") {
		t.Errorf("default handler: %+v", rs[1])
	}
	o.Config.DefaultRuntime = "crun"
	if rs := checkRuntimes(context.Background(), o); rs[0].Status != Fail {
		t.Errorf("missing default handler: %+v", rs[0])
	}
}

func TestCNI(t *testing.T) {
	o := opts(t)
	bin := t.TempDir()
	o.Config.CNI.BinDirs = []string{bin}
	o.Config.CNI.ConfDir = t.TempDir()
	if r := checkCNIPlugins(o); r.Status != Warn || !strings.Contains(r.Detail, "bridge, host-local, portmap, loopback not found") {
		t.Errorf("no plugins: %+v", r)
	}
	if r := checkCNIConfig(o); r.Status != Warn {
		t.Errorf("no config: %+v", r)
	}
	// Plugins that speak CNI 0.3.x only; the config asks for 1.0.0.
	for _, p := range standardPlugins {
		writeFile(t, filepath.Join(bin, p), "#!/bin/sh\necho '{\"cniVersion\":\"0.3.1\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\"]}'\n", 0o755)
	}
	if r := checkCNIPlugins(o); r.Status != OK {
		t.Errorf("plugins present: %+v", r)
	}
	conf := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipam":{"type":"host-local"}},{"type":"tuning"}]}`
	writeFile(t, filepath.Join(o.Config.CNI.ConfDir, "10-n.conflist"), conf, 0o644)
	r := checkCNIConfig(o)
	if r.Status != Fail || !strings.Contains(r.Detail, `plugin "tuning" not found`) || !strings.Contains(r.Detail, `plugin "bridge" does not support cniVersion 1.0.0`) {
		t.Errorf("bad config: %+v", r)
	}
	writeFile(t, filepath.Join(o.Config.CNI.ConfDir, "10-n.conflist"),
		`{"cniVersion":"0.3.1","name":"n","plugins":[{"type":"bridge","ipam":{"type":"host-local"}},{"type":"loopback"}]}`, 0o644)
	if r := checkCNIConfig(o); r.Status != OK || !strings.Contains(r.Detail, "plugins bridge, host-local, loopback") {
		t.Errorf("good config: %+v", r)
	}
}

func TestCgroupDriver(t *testing.T) {
	o := opts(t)
	o.SystemdDir = filepath.Join(t.TempDir(), "missing")
	o.Config.CgroupDriver = config.CgroupDriverSystemd
	rs := checkCgroups(o)
	if last := rs[len(rs)-1]; last.Check != "cgroup driver" || last.Status != Fail {
		t.Errorf("systemd driver without systemd: %+v", last)
	}
	o.SystemdDir = t.TempDir()
	o.Config.CgroupDriver = config.CgroupDriverCgroupfs
	if last := checkCgroups(o)[len(rs)-1]; last.Status != Warn {
		t.Errorf("cgroupfs driver under systemd: %+v", last)
	}
	o.Config.CgroupDriver = config.CgroupDriverSystemd
	if last := checkCgroups(o)[len(rs)-1]; last.Status != OK {
		t.Errorf("systemd driver under systemd: %+v", last)
	}
}

func TestKubeletConfig(t *testing.T) {
	o := opts(t)
	o.KubeletConfig = filepath.Join(t.TempDir(), "config.yaml")
	for _, c := range []struct {
		yaml           string
		driver, endpnt Status
	}{
		{"kind: KubeletConfiguration\ncgroupDriver: cgroupfs\n", OK, OK},
		{"kind: KubeletConfiguration\n", OK, OK}, // kubelet's default is cgroupfs
		{"kind: KubeletConfiguration\ncgroupDriver: systemd\ncontainerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n", Fail, Warn},
		{"kind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///run/cri-rt/cri-rt.sock\n", OK, OK},
	} {
		writeFile(t, o.KubeletConfig, "apiVersion: kubelet.config.k8s.io/v1beta1\n"+c.yaml, 0o644)
		rs := checkKubelet(o)
		if len(rs) != 2 || rs[0].Status != c.driver || rs[1].Status != c.endpnt {
			t.Errorf("%q: %+v", c.yaml, rs)
		}
	}
	writeFile(t, o.KubeletConfig, "kind: Pod\n", 0o644)
	if rs := checkKubelet(o); len(rs) != 1 || rs[0].Status != Fail {
		t.Errorf("not a KubeletConfiguration: %+v", rs)
	}
	o.KubeletConfig = ""
	if rs := checkKubelet(o); rs != nil {
		t.Errorf("no kubelet config given: %+v", rs)
	}
}

// TestSocketStates: each way of not answering has its own message.
func TestSocketStates(t *testing.T) {
	o := opts(t)
	dir, err := os.MkdirTemp("", "preflight-") // short: sun_path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	o.Config.GRPC.Address = filepath.Join(dir, "s.sock")
	if r := checkSocket(context.Background(), o, false)[0]; r.Status != Fail || !strings.Contains(r.Detail, "not running") {
		t.Errorf("no socket: %+v", r)
	}
	ln, err := net.Listen("unix", o.Config.GRPC.Address)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // what a SIGKILLed daemon leaves
	if r := checkSocket(context.Background(), o, false)[0]; r.Status != Fail || !strings.Contains(r.Detail, "nothing listens") {
		t.Errorf("stale socket: %+v", r)
	}
	os.Remove(o.Config.GRPC.Address)
	writeFile(t, o.Config.GRPC.Address, "", 0o644)
	if r := checkSocket(context.Background(), o, false)[0]; r.Status != Fail || !strings.Contains(r.Detail, "not a socket") {
		t.Errorf("regular file: %+v", r)
	}
}

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	rs := []Result{
		ok("socket", "answers"),
		fail("ip_forward", "sysctl -w net.ipv4.ip_forward=1", "net.ipv4.ip_forward = 0\n(second line)"),
	}
	if err := Print(&b, rs); err != nil {
		t.Fatal(err)
	}
	want := "OK    socket      answers\n" +
		"FAIL  ip_forward  net.ipv4.ip_forward = 0 (second line)  (fix: sysctl -w net.ipv4.ip_forward=1)\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if Failed(rs) != 1 {
		t.Error("Failed")
	}
}

func TestDiskAndOverlayOnTempRoot(t *testing.T) {
	o := opts(t)
	base := t.TempDir()
	o.Config.Root = filepath.Join(base, "not", "yet", "created")
	if r := checkDisk(o); r.Status == "" || !strings.Contains(r.Detail, base+": ") || !strings.Contains(r.Detail, "free of") {
		t.Errorf("disk: %+v", r)
	}
	if os.Geteuid() != 0 {
		t.Skip("the overlay mount needs root")
	}
	if r := checkOverlay(o); r.Status != OK || !strings.Contains(r.Detail, base) {
		t.Errorf("overlay: %+v", r)
	}
	// The check tries the filesystem the root will be created on, and
	// neither creates the root nor leaves its test directory behind.
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("left in %s: %v", base, ents)
	}
}
