package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/test/framework"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestVersionStatusRuntimeConfig(t *testing.T) {
	confDir := t.TempDir()
	d := framework.NewDaemon(t, fmt.Sprintf("cgroup_driver = \"systemd\"\n[cni]\nconf_dir = %q\n", confDir))
	d.Start()
	rs, _ := d.Clients()

	v, err := rs.Version(ctx(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "cri-rt" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Fatalf("Version = %+v", v)
	}

	st, err := rs.Status(ctx(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	cond := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.Status.Conditions {
		cond[c.Type] = c
	}
	if !cond[runtimeapi.RuntimeReady].GetStatus() {
		t.Fatalf("RuntimeReady false: %+v", cond)
	}
	if nc := cond[runtimeapi.NetworkReady]; nc.GetStatus() || nc.Reason == "" || !strings.Contains(nc.Message, confDir) {
		t.Fatalf("NetworkReady without CNI config: %+v", nc)
	}
	if !strings.Contains(st.Info["config"], `"Root":"`+d.Root+`"`) {
		t.Fatalf("verbose info lacks the effective config: %s", st.Info["config"])
	}

	// A conflist dropped in makes the network ready without a restart.
	conf := `{"cniVersion":"1.0.0","name":"test","plugins":[{"type":"loopback"}]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = rs.Status(ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if c.Type == runtimeapi.NetworkReady && !c.Status {
			t.Fatalf("NetworkReady still false with a conflist: %+v", c)
		}
	}
	if st.Info != nil {
		t.Fatal("info must be empty without verbose")
	}

	rc, err := rs.RuntimeConfig(ctx(t), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_SYSTEMD {
		t.Fatalf("RuntimeConfig = %+v", rc)
	}
}

func TestUnbuiltRPCIsUnimplemented(t *testing.T) {
	d := framework.NewDaemon(t, "")
	d.Start()
	rs, _ := d.Clients()
	// Pod checkpoint/restore (cri-api v0.37) is not built.
	_, err := rs.RestorePod(ctx(t), &runtimeapi.RestorePodRequest{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "RestorePod") {
		t.Fatalf("RestorePod: %v", err)
	}
}

func TestSecondDaemonOnSameRootIsRefused(t *testing.T) {
	d := framework.NewDaemon(t, "")
	d.Start()
	second := framework.NewDaemon(t, "")
	second.Root = d.Root
	if err := second.StartNoWait(); err != nil {
		t.Fatal(err)
	}
	err := second.Wait(20 * time.Second)
	if err == nil {
		t.Fatal("second daemon on the same root must fail")
	}
	if !second.LogContains("already running with root " + d.Root) {
		t.Fatalf("unclear message: %s", second.Log())
	}
	// The first one is unharmed.
	rs, _ := d.Clients()
	if _, err := rs.Version(ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestSocketOfLiveDaemonIsNotStolen(t *testing.T) {
	d := framework.NewDaemon(t, "")
	d.Start()
	other := framework.NewDaemon(t, "")
	other.Socket = d.Socket // different root, same socket
	if err := other.StartNoWait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Wait(20 * time.Second); err == nil || !other.LogContains("in use") {
		t.Fatalf("want refusal, got %v: %s", err, other.Log())
	}
	if _, err := os.Stat(d.Socket); err != nil {
		t.Fatal("the live daemon's socket was removed")
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	d := framework.NewDaemon(t, "")
	// A stale socket file from a crashed daemon must not stop the start.
	if err := os.MkdirAll(d.State, 0o711); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	d.Start()

	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	if fi, err := os.Stat(d.Root); err != nil || fi.Mode().Perm() != 0o711 {
		t.Fatalf("root mode: %v %v", fi.Mode().Perm(), err)
	}
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.Log())
	}
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	// The root lock is free again: a new daemon starts on the same root.
	d.Start()
}

func TestOOMScoreApplied(t *testing.T) {
	d := framework.NewDaemon(t, "oom_score = 500\n")
	d.Start()
	if got := readOOMScore(t, d.Pid()); got != 500 {
		t.Fatalf("oom_score_adj = %d, want 500", got)
	}

	// Lowering needs CAP_SYS_RESOURCE. Without it the daemon must warn and
	// keep running with the inherited value; with it, the value applies.
	low := framework.NewDaemon(t, "oom_score = -999\n")
	low.Start()
	got := readOOMScore(t, low.Pid())
	parent := readOOMScore(t, os.Getpid())
	switch got {
	case -999:
	case parent:
		if !low.LogContains("cannot lower oom_score_adj") {
			t.Fatalf("restricted oom_score_adj without a warning:\n%s", low.Log())
		}
	default:
		t.Fatalf("oom_score_adj = %d, want -999 or %d", got, parent)
	}
}

func readOOMScore(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsEndpoint(t *testing.T) {
	addr := freeLoopbackAddr(t)
	d := framework.NewDaemon(t, fmt.Sprintf("[metrics]\naddress = %q\n", addr))
	d.Start()
	rs, _ := d.Clients()
	for i := 0; i < 3; i++ {
		if _, err := rs.Version(ctx(t), &runtimeapi.VersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = rs.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: "x"})

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`cri_rt_grpc_requests_total{code="OK",rpc="Version"}`,
		`cri_rt_grpc_request_duration_seconds_count{rpc="Version"}`,
		`cri_rt_grpc_requests_total{code="`, // RemoveContainer, whatever its code today
		`rpc="RemoveContainer"`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Version ran at least 3 times (plus the readiness probe).
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, `cri_rt_grpc_requests_total{code="OK",rpc="Version"} `) {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			if n < 4 {
				t.Errorf("Version count %d, want >= 4", n)
			}
		}
	}
}

func TestBadConfigFailsNamingTheKey(t *testing.T) {
	d := framework.NewDaemon(t, "cgroup_driver = \"cgroupfs\"\nsandbox_imag = \"x\"\n")
	if err := d.StartNoWait(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(15 * time.Second); err == nil {
		t.Fatal("daemon started with an unknown key")
	}
	if !d.LogContains("line 2: unknown key sandbox_imag") {
		t.Fatalf("error does not name the key and line:\n%s", d.Log())
	}
}

func freeLoopbackAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestUpdateRuntimeConfigWritesCNIConfigFromTemplate(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "cni.tmpl")
	os.WriteFile(tmpl, []byte(`{"cniVersion":"1.0.0","name":"from-template","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"{{.PodCIDR}}"}]]}}]}`), 0o644)
	confDir := filepath.Join(dir, "net.d")
	d := framework.NewDaemon(t, fmt.Sprintf("[cni]\nconf_dir = %q\nconf_template = %q\n", confDir, tmpl))
	d.Start()
	rs, _ := d.Clients()
	networkReady := func() bool {
		st, err := rs.Status(ctx(t), &runtimeapi.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Status.Conditions {
			if c.Type == runtimeapi.NetworkReady {
				return c.Status
			}
		}
		return false
	}
	if networkReady() {
		t.Fatal("ready without a config")
	}
	if _, err := rs.UpdateRuntimeConfig(ctx(t), &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.96.7.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	if !networkReady() {
		t.Fatal("not ready after the pod CIDR arrived")
	}
	b, _ := os.ReadFile(filepath.Join(confDir, "10-cri-rt.conflist"))
	if !strings.Contains(string(b), "10.96.7.0/24") {
		t.Fatalf("rendered config: %s", b)
	}
}
