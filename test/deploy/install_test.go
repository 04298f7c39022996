package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/network"
)

// The files a default install writes (with --cni-bridge), host paths.
var installed = []string{
	"etc/cni/net.d/10-cri-rt-bridge.conflist",
	"etc/cri-rt/config.toml",
	"etc/cri-rt/install-manifest",
	"etc/crictl.yaml",
	"etc/modules-load.d/cri-rt.conf",
	"etc/sysctl.d/99-cri-rt.conf",
	"etc/systemd/system/cri-rt.service",
	"usr/local/bin/cri-rt",
	"usr/local/bin/cri-rt-monitor",
}

// TestInstallScratchRoot installs into an empty scratch root and checks
// every file; a second run must change nothing at all (content, mode,
// mtime of any path, directories included); --uninstall removes what was
// installed but keeps data and edited files; --purge removes those too.
func TestInstallScratchRoot(t *testing.T) {
	bin := binDir(t)
	root := t.TempDir()
	out := install(t, "--from", bin, "--root-dir", root, "--cni-bridge")
	if got := files(t, root); !slices.Equal(got, installed) {
		t.Fatalf("installed files:\n  %v\nwant\n  %v\noutput:\n%s", got, installed, out)
	}
	r := func(p string) string { return filepath.Join(root, p) }

	// Binaries side by side (the daemon finds the monitor next to itself).
	sameFile(t, filepath.Join(bin, "cri-rt"), r("usr/local/bin/cri-rt"))
	sameFile(t, filepath.Join(bin, "cri-rt-monitor"), r("usr/local/bin/cri-rt-monitor"))
	for _, b := range []string{"cri-rt", "cri-rt-monitor"} {
		if fi, _ := os.Stat(r("usr/local/bin/" + b)); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v", b, fi.Mode())
		}
	}
	// The unit as shipped (default prefix), the config as `config default`.
	sameFile(t, deployPath("cri-rt.service"), r("etc/systemd/system/cri-rt.service"))
	def, err := exec.Command(filepath.Join(bin, "cri-rt"), "config", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, r("etc/cri-rt/config.toml")) != string(def) {
		t.Error("config.toml is not `cri-rt config default`")
	}
	crictl := readFile(t, r("etc/crictl.yaml"))
	for _, want := range []string{"runtime-endpoint: unix:///run/cri-rt/cri-rt.sock\n", "image-endpoint: unix:///run/cri-rt/cri-rt.sock\n"} {
		if !strings.Contains(crictl, want) {
			t.Errorf("crictl.yaml lacks %q:\n%s", want, crictl)
		}
	}
	if s := readFile(t, r("etc/sysctl.d/99-cri-rt.conf")); !strings.Contains(s, "net.ipv4.ip_forward = 1") || !strings.Contains(s, "net.bridge.bridge-nf-call-iptables = 1") {
		t.Errorf("sysctl file:\n%s", s)
	}
	if s := readFile(t, r("etc/modules-load.d/cri-rt.conf")); !strings.Contains(s, "\noverlay\nbr_netfilter\n") {
		t.Errorf("modules file:\n%s", s)
	}
	// The bridge network is what the daemon would load from that dir.
	list, _, err := network.LoadDefaultNetwork(r("etc/cni/net.d"))
	if err != nil || list.Name != "cri-rt" || len(list.Plugins) != 3 || list.Plugins[0].Network.Type != "bridge" {
		t.Fatalf("bridge conflist: %+v %v", list, err)
	}
	// In a scratch root nothing may run on the host: no apt-get, no systemctl.
	if !strings.Contains(out, "CNI plugins missing") || strings.Contains(out, "installing containernetworking-plugins") {
		t.Errorf("CNI plugins in a scratch root must be reported, not installed:\n%s", out)
	}

	// Idempotent: the second run changes nothing, not even an mtime.
	before := snapshot(t, root)
	time.Sleep(20 * time.Millisecond) // so a rewrite would show in mtimes
	out = install(t, "--from", bin, "--root-dir", root, "--cni-bridge")
	if d := diffSnapshots(before, snapshot(t, root)); len(d) > 0 {
		t.Fatalf("second run changed files:\n%s\noutput:\n%s", strings.Join(d, "\n"), out)
	}
	if !strings.Contains(out, "nothing changed") {
		t.Errorf("second run output:\n%s", out)
	}

	// An operator edits the config: later runs keep it, uninstall keeps it.
	edited := "# mine\nlog_level = \"debug\"\n"
	if err := os.WriteFile(r("etc/cri-rt/config.toml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out = install(t, "--from", bin, "--root-dir", root, "--cni-bridge")
	if readFile(t, r("etc/cri-rt/config.toml")) != edited || !strings.Contains(out, "keeping /etc/cri-rt/config.toml") {
		t.Fatalf("edited config not kept:\n%s", out)
	}
	// Data under root survives a plain uninstall.
	if err := os.MkdirAll(r("var/lib/cri-rt/content"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r("var/lib/cri-rt/content/blob"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = install(t, "--root-dir", root, "--uninstall")
	want := []string{"etc/cri-rt/config.toml", "var/lib/cri-rt/content/blob"}
	if got := files(t, root); !slices.Equal(got, want) {
		t.Fatalf("after --uninstall: %v, want %v\n%s", got, want, out)
	}
	out = install(t, "--root-dir", root, "--uninstall", "--purge")
	if got := files(t, root); len(got) != 0 {
		t.Fatalf("after --purge: %v\n%s", got, out)
	}
}

// TestInstallKeepsOperatorFiles: an existing config is never overwritten;
// an existing crictl.yaml naming another runtime is kept by default, and
// with --crictl replace saved and restored by --uninstall.
func TestInstallKeepsOperatorFiles(t *testing.T) {
	bin := binDir(t)
	root := t.TempDir()
	r := func(p string) string { return filepath.Join(root, p) }
	const conf = "log_level = \"debug\"\n"
	const containerd = "runtime-endpoint: unix:///run/containerd/containerd.sock\n"
	for p, c := range map[string]string{"etc/cri-rt/config.toml": conf, "etc/crictl.yaml": containerd} {
		if err := os.MkdirAll(filepath.Dir(r(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r(p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := install(t, "--from", bin, "--root-dir", root)
	if readFile(t, r("etc/cri-rt/config.toml")) != conf || readFile(t, r("etc/crictl.yaml")) != containerd {
		t.Fatalf("operator files changed:\n%s", out)
	}
	if !strings.Contains(out, "keeping /etc/crictl.yaml: it names another runtime") {
		t.Errorf("no warning about crictl.yaml:\n%s", out)
	}
	if strings.Contains(readFile(t, r("etc/cri-rt/install-manifest")), "config.toml") {
		t.Error("the operator's config was recorded as installed (uninstall would remove it)")
	}

	out = install(t, "--from", bin, "--root-dir", root, "--crictl", "replace")
	if !strings.Contains(readFile(t, r("etc/crictl.yaml")), "unix:///run/cri-rt/cri-rt.sock") || readFile(t, r("etc/crictl.yaml.pre-cri-rt")) != containerd {
		t.Fatalf("--crictl replace:\n%s", out)
	}
	// Idempotent in this mode too.
	before := snapshot(t, root)
	out = install(t, "--from", bin, "--root-dir", root, "--crictl=replace")
	if d := diffSnapshots(before, snapshot(t, root)); len(d) > 0 {
		t.Fatalf("second --crictl replace run changed: %v\n%s", d, out)
	}

	install(t, "--root-dir", root, "--uninstall")
	if readFile(t, r("etc/crictl.yaml")) != containerd || readFile(t, r("etc/cri-rt/config.toml")) != conf {
		t.Fatal("uninstall did not restore crictl.yaml or touched the operator's config")
	}
	if got := files(t, root); !slices.Equal(got, []string{"etc/cri-rt/config.toml", "etc/crictl.yaml"}) {
		t.Fatalf("after uninstall: %v", got)
	}
}

// TestInstallPrefix: --prefix moves the binaries and the unit's ExecStart
// follows them.
func TestInstallPrefix(t *testing.T) {
	bin := binDir(t)
	root := t.TempDir()
	install(t, "--from", bin, "--root-dir", root, "--prefix", "/opt/cri-rt", "--no-sysctl", "--crictl", "skip")
	for _, p := range []string{"opt/cri-rt/bin/cri-rt", "opt/cri-rt/bin/cri-rt-monitor"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Error(err)
		}
	}
	unit := parseUnit(t, filepath.Join(root, "etc/systemd/system/cri-rt.service"))
	if got := unit.get("Service", "ExecStart"); len(got) != 1 || got[0] != "/opt/cri-rt/bin/cri-rt --config /etc/cri-rt/config.toml" {
		t.Fatalf("ExecStart %v", got)
	}
	if got := files(t, root); slices.Contains(got, "etc/crictl.yaml") || slices.Contains(got, "etc/sysctl.d/99-cri-rt.conf") {
		t.Fatalf("--crictl skip / --no-sysctl ignored: %v", got)
	}
}

// TestInstalledCommandLineStarts runs the unit's ExecStart as installed
// (the installed binary, the installed config) with only root, state and
// socket moved into the test's directory, and calls Version on it; then
// the installed `cri-rt check --socket-only` must pass and SIGTERM must
// stop it cleanly.
func TestInstalledCommandLineStarts(t *testing.T) {
	bin := binDir(t)
	root := t.TempDir()
	install(t, "--from", bin, "--root-dir", root)
	unit := parseUnit(t, filepath.Join(root, "etc/systemd/system/cri-rt.service"))
	exec0 := unit.get("Service", "ExecStart")
	if len(exec0) != 1 {
		t.Fatalf("ExecStart %v", exec0)
	}
	argv := strings.Fields(exec0[0])
	// Host paths of the command line resolve inside the scratch root.
	for i, a := range argv {
		if strings.HasPrefix(a, "/") {
			argv[i] = filepath.Join(root, a)
		}
	}
	if argv[0] != filepath.Join(root, "usr/local/bin/cri-rt") || !slices.Contains(argv, filepath.Join(root, "etc/cri-rt/config.toml")) {
		t.Fatalf("ExecStart %q", exec0[0])
	}
	work, err := os.MkdirTemp("", "cri-rt-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	sock := filepath.Join(work, "state", "cri-rt.sock")
	overrides := []string{"--root", filepath.Join(work, "root"), "--state", filepath.Join(work, "state"), "--address", sock}
	cmd := exec.Command(argv[0], append(argv[1:], overrides...)...)
	var log syncBuf
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	v := waitVersion(t, sock, exited, &log)
	if v.RuntimeName != "cri-rt" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version %+v", v)
	}
	check := exec.Command(argv[0], append([]string{"check", "--socket-only", "--config", argv[len(argv)-1]}, overrides...)...)
	if out, err := check.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "OK") {
		t.Fatalf("installed cri-rt check --socket-only: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15 s after SIGTERM")
	}
}

// waitVersion polls the socket until Version answers or the daemon exits.
func waitVersion(t *testing.T, sock string, exited chan error, log *syncBuf) *runtimeapi.VersionResponse {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("daemon exited: %v\n%s", err, log.String())
		default:
		}
		if _, err := os.Stat(sock); err == nil {
			conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			v, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
			cancel()
			conn.Close()
			if err == nil {
				return v
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no Version answer on %s\n%s", sock, log.String())
	return nil
}

// TestInstallSystemdCalls follows the systemctl calls install.sh makes, with
// a stand-in systemctl (no systemd runs here, and the host's must not be
// touched): the first install reloads and enables --now; an unchanged rerun
// only re-asserts enable --now (a no-op for systemd) and restarts nothing;
// a changed binary restarts the running service; uninstall disables it.
func TestInstallSystemdCalls(t *testing.T) {
	bin := binDir(t)
	root := t.TempDir()
	fake := t.TempDir()
	callLog := filepath.Join(fake, "calls")
	active := filepath.Join(fake, "active")
	systemctl := filepath.Join(fake, "systemctl")
	script := "#!/bin/sh\necho \"$*\" >>" + callLog + "\n" +
		"case \"$1\" in\n" +
		"is-active) [ -e " + active + " ]; exit $? ;;\n" +
		"enable) [ \"$2\" = --now ] && touch " + active + " ;;\n" +
		"disable) rm -f " + active + " ;;\n" +
		"esac\nexit 0\n"
	if err := os.WriteFile(systemctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	calls := func() []string {
		b, _ := os.ReadFile(callLog)
		os.Remove(callLog)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	args := []string{"--from", bin, "--root-dir", root, "--systemd", "yes", "--systemctl", systemctl, "--no-sysctl", "--crictl", "skip"}

	install(t, args...)
	if got, want := calls(), []string{"daemon-reload", "is-active -q cri-rt.service", "enable --now cri-rt.service"}; !slices.Equal(got, want) {
		t.Errorf("first install: %q, want %q", got, want)
	}
	install(t, args...)
	if got, want := calls(), []string{"is-active -q cri-rt.service", "enable --now cri-rt.service"}; !slices.Equal(got, want) {
		t.Errorf("unchanged rerun: %q, want %q", got, want)
	}
	// A new build: same program, different bytes.
	newBin := t.TempDir()
	for _, b := range []string{"cri-rt", "cri-rt-monitor"} {
		data, err := os.ReadFile(filepath.Join(bin, b))
		if err != nil {
			t.Fatal(err)
		}
		if b == "cri-rt-monitor" {
			data = append(data, 0) // trailing bytes after the ELF sections do not matter
		}
		if err := os.WriteFile(filepath.Join(newBin, b), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args[1] = newBin
	out := install(t, args...)
	if got, want := calls(), []string{"is-active -q cri-rt.service", "enable --now cri-rt.service", "restart cri-rt.service"}; !slices.Equal(got, want) {
		t.Errorf("upgrade: %q, want %q\n%s", got, want, out)
	}
	if !strings.Contains(out, "containers keep running") {
		t.Errorf("upgrade output:\n%s", out)
	}
	install(t, "--root-dir", root, "--systemd", "yes", "--systemctl", systemctl, "--uninstall")
	if got, want := calls(), []string{"disable --now cri-rt.service", "daemon-reload"}; !slices.Equal(got, want) {
		t.Errorf("uninstall: %q, want %q", got, want)
	}
}
