package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-rt/cri-rt/test/framework"
)

// checkLines runs `cri-rt check` with the daemon's flags and returns the
// status of each check by name, the raw output and the exit code.
func checkLines(t *testing.T, d *framework.Daemon, extra ...string) (map[string]string, string, int) {
	t.Helper()
	args := append([]string{"check", "--config", d.Config, "--root", d.Root, "--state", d.State, "--address", d.Socket}, extra...)
	cmd := exec.Command(framework.Binary(t), args...)
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			t.Fatalf("short line %q in:\n%s", l, out)
		}
		// The check name is what lies between the status and the two-space
		// gap before the detail (names have single spaces).
		name := strings.TrimSpace(strings.SplitN(strings.TrimSpace(l[len(f[0]):]), "  ", 2)[0])
		status[name] = f[0]
	}
	return status, string(out), code
}

// TestCheckOnThisMachine runs `cri-rt check` against a daemon the test
// started, configured like a node: the OCI runtime, the CNI plugins and a
// network config, an overlay mount under its root and its socket must all
// be OK here. The other lines depend on the machine and are only required
// to be present.
func TestCheckOnThisMachine(t *testing.T) {
	n := framework.NewNetwork(t, 202)
	d := framework.NewDaemon(t, framework.ConfigWithImages("registry.k8s.io/pause:3.10", n.ConfDir))
	d.Start()

	status, out, code := checkLines(t, d)
	for _, name := range []string{"config", "runtime runc (default)", "monitor", "cni plugins", "cni config", "overlayfs", "socket", "runtime status"} {
		if status[name] != "OK" {
			t.Errorf("%s: %q, want OK", name, status[name])
		}
	}
	for _, name := range []string{"cgroups", "cgroup driver", "ip_forward", "br_netfilter", "disk"} {
		if status[name] == "" {
			t.Errorf("no %s line", name)
		}
	}
	failed := strings.Contains(out, "\nFAIL") || strings.HasPrefix(out, "FAIL")
	if failed != (code != 0) {
		t.Errorf("exit code %d with output:\n%s", code, out)
	}
	t.Logf("cri-rt check:\n%s", out)
	if strings.Contains(out, ".cri-rt-check-overlay-") {
		t.Error("the overlay test directory leaked into the output")
	}
	if left, _ := filepath.Glob(filepath.Join(d.Root, ".cri-rt-check-overlay-*")); len(left) > 0 {
		t.Errorf("overlay test directory left behind: %v", left)
	}

	// kubelet's config: a matching driver is OK, a different one FAILs.
	kc := filepath.Join(t.TempDir(), "kubelet.yaml")
	write := func(driver string) {
		y := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: " + driver + "\ncontainerRuntimeEndpoint: unix://" + d.Socket + "\n"
		if err := os.WriteFile(kc, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cgroupfs")
	if status, out, _ := checkLines(t, d, "--kubelet-config", kc); status["kubelet cgroup driver"] != "OK" || status["kubelet endpoint"] != "OK" {
		t.Errorf("matching kubelet config:\n%s", out)
	}
	write("systemd")
	if status, out, code := checkLines(t, d, "--kubelet-config", kc); status["kubelet cgroup driver"] != "FAIL" || code == 0 {
		t.Errorf("mismatched kubelet cgroup driver not a FAIL (exit %d):\n%s", code, out)
	}

	// --socket-only: one line, nothing else tried.
	if status, out, code := checkLines(t, d, "--socket-only"); len(status) != 1 || status["socket"] != "OK" || code != 0 {
		t.Errorf("--socket-only (exit %d):\n%s", code, out)
	}
	// A stopped daemon: the socket line says so and the exit code is non-zero.
	d.Kill()
	status, out, code = checkLines(t, d, "--socket-only")
	if status["socket"] != "FAIL" || code == 0 || !strings.Contains(out, "not running") {
		t.Errorf("socket of a stopped daemon (exit %d):\n%s", code, out)
	}
}
