package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The integration tests drive real runc containers with a busybox rootfs;
// they need root, runc and busybox-static and skip without them.

const cgroupParent = "cri-rt-monitor-test"

var (
	monitorBin string // built in TestMain
	runcBin    string
	runcRoot   string // a runc --root of the tests' own
	rootfs     string // shared busybox rootfs
	watcher    *Watcher
	skipReason string
	idSeq      atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv(helperEnv) != "" {
		return helperMain()
	}
	tmp, err := os.MkdirTemp("", "cri-rt-monitor-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	monitorBin = filepath.Join(tmp, BinaryName)
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", monitorBin, "github.com/cri-rt/cri-rt/cmd/cri-rt-monitor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build monitor: %v\n%s", err, out)
		return 1
	}
	skipReason = prepare(tmp)
	if skipReason == "" {
		// Monitors detach from whoever starts them; as a subreaper the
		// test process adopts them and can check that they really end
		// (the Watcher reaps them), instead of leaving zombies to an
		// init that may not reap.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if watcher, err = NewWatcher(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer watcher.Close()
		defer removeCgroupParents()
	}
	return m.Run()
}

// prepare finds runc and busybox and builds the shared rootfs; it returns
// why the integration tests must skip, or "".
func prepare(tmp string) string {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	for _, p := range []string{"/usr/local/sbin/runc", "/usr/sbin/runc"} {
		if _, err := os.Stat(p); err == nil {
			runcBin = p
			break
		}
	}
	if runcBin == "" {
		p, err := exec.LookPath("runc")
		if err != nil {
			return "runc not found"
		}
		runcBin = p
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		busybox = "/bin/busybox"
		if _, err := os.Stat(busybox); err != nil {
			return "busybox not found"
		}
	}
	runcRoot = filepath.Join(tmp, "runc")
	rootfs = filepath.Join(tmp, "rootfs")
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err.Error()
		}
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		return err.Error()
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), b, 0o755); err != nil {
		return err.Error()
	}
	for _, name := range []string{"sh", "echo", "sleep", "cat", "head", "tr", "printf", "stty", "yes", "dd", "true", "seq", "tail"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", name)); err != nil {
			return err.Error()
		}
	}
	return ""
}

func requireIntegration(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// cgroupDirs returns the dirs a container's cgroupsPath maps to in every
// mounted hierarchy, and the one that holds its OOM counter.
func cgroupDirs(rel string) (all []string, memory string) {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		if e.IsDir() {
			all = append(all, filepath.Join("/sys/fs/cgroup", e.Name(), rel))
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		memory = filepath.Join("/sys/fs/cgroup/memory", rel)
	} else {
		memory = filepath.Join("/sys/fs/cgroup", rel)
		all = append(all, memory)
	}
	return all, memory
}

func removeCgroupParents() {
	all, _ := cgroupDirs(cgroupParent)
	for _, d := range all {
		_ = os.Remove(d)
	}
}

type bundleOpts struct {
	args     []string
	terminal bool
	memory   int64 // limit in bytes, 0: none
}

// newBundle writes a bundle using the shared rootfs; its cgroup is
// /cri-rt-monitor-test/<id>.
func newBundle(t *testing.T, id string, o bundleOpts) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	spec := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: o.terminal,
			Args:     o.args,
			Env:      []string{"PATH=/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: id,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=65536k"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/" + cgroupParent + "/" + id,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if o.memory > 0 {
		// Swap equal to the limit: no swapping around the OOM killer.
		spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &o.memory, Swap: &o.memory}
	}
	b, err := json.MarshalIndent(&spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newID(t *testing.T) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), idSeq.Add(1))
}

type ctr struct {
	id       string
	cfg      Config
	info     *Info
	exited   chan struct{} // closed when the monitor process has ended
	cgroups  []string
	logPath  string
	stateDir string
}

type ctrOpts struct {
	bundleOpts
	stdin, stdinOnce bool
	noLog            bool
	maxLine          int
	stateDir         string // default: a temp dir
}

// newConfig makes a Config for a new container, without creating it, and
// registers the cleanup and the leak checks.
func newConfig(t *testing.T, o ctrOpts) (*ctr, Config) {
	t.Helper()
	id := newID(t)
	all, mem := cgroupDirs(filepath.Join(cgroupParent, id))
	c := &ctr{id: id, cgroups: all, exited: make(chan struct{})}
	c.stateDir = o.stateDir
	if c.stateDir == "" {
		c.stateDir = filepath.Join(t.TempDir(), "state")
	}
	if !o.noLog {
		c.logPath = filepath.Join(t.TempDir(), "logs", "0.log")
	}
	t.Cleanup(func() { c.cleanup(t) })
	c.cfg = Config{
		ID: id, Bundle: newBundle(t, id, o.bundleOpts), Runtime: runcBin, RuntimeRoot: runcRoot,
		StateDir: c.stateDir, LogPath: c.logPath, Terminal: o.terminal, Stdin: o.stdin, StdinOnce: o.stdinOnce,
		CgroupDir: mem, MaxLogLineSize: o.maxLine,
	}
	return c, c.cfg
}

// create creates (not starts) a container through a monitor.
func create(t *testing.T, o ctrOpts) *ctr {
	t.Helper()
	c, cfg := newConfig(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := Create(ctx, monitorBin, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	c.info = info
	if err := watcher.Watch(info.MonitorPid, func() { close(c.exited) }); err != nil {
		t.Fatal(err)
	}
	return c
}

// run creates and starts a container.
func run(t *testing.T, o ctrOpts) *ctr {
	t.Helper()
	c := create(t, o)
	c.runc(t, "start", c.id)
	return c
}

func (c *ctr) runc(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(runcBin, append([]string{"--root", runcRoot}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("runc %v: %v: %s", args, err, out)
	}
	return string(out)
}

// waitExit waits for the monitor to end and returns the recorded exit.
func (c *ctr) waitExit(t *testing.T) *Exit {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("monitor %d of %s did not exit", c.info.MonitorPid, c.id)
	}
	e, err := ReadExit(c.stateDir)
	if err != nil {
		t.Fatalf("ReadExit: %v", err)
	}
	return e
}

// cleanup deletes the container, kills the monitor, removes the cgroups and
// then checks that nothing is left.
func (c *ctr) cleanup(t *testing.T) {
	_ = exec.Command(runcBin, "--root", runcRoot, "delete", "--force", c.id).Run()
	if c.info != nil {
		select {
		case <-c.exited:
		default:
			_ = unix.Kill(c.info.MonitorPid, unix.SIGKILL)
		}
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("monitor %d did not end", c.info.MonitorPid)
		}
	}
	checkNoLeaks(t, c.id, c.stateDir)
	for _, d := range c.cgroups {
		_ = os.Remove(d) // after a failed check, for the next tests
	}
}

// checkNoLeaks fails the test if runc still knows the container, a process
// still runs for its state dir, or its cgroup exists anywhere.
func checkNoLeaks(t *testing.T, id, stateDir string) {
	t.Helper()
	out, _ := exec.Command(runcBin, "--root", runcRoot, "list", "-q").Output()
	for _, l := range strings.Fields(string(out)) {
		if l == id {
			t.Errorf("runc still lists %s", id)
		}
	}
	if pids := processesWith(stateDir); len(pids) > 0 {
		t.Errorf("processes left for %s: %v", stateDir, pids)
	}
	all, _ := cgroupDirs(filepath.Join(cgroupParent, id))
	for _, d := range all {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left", d)
		}
	}
}

// processesWith returns the live (not zombie) processes whose command line
// mentions s.
func processesWith(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

type logRecord struct {
	time    time.Time
	stream  string
	tag     string
	content string
}

// readLog parses a CRI log file as kubelet does, failing on any malformed
// record.
func readLog(t *testing.T, path string) []logRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var recs []logRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) != 4 {
			t.Fatalf("malformed record %q", sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		if !strings.HasSuffix(parts[0], "Z") {
			t.Fatalf("timestamp %q is not UTC", parts[0])
		}
		if parts[1] != "stdout" && parts[1] != "stderr" || parts[2] != "P" && parts[2] != "F" {
			t.Fatalf("malformed record %q", sc.Text())
		}
		recs = append(recs, logRecord{ts, parts[1], parts[2], parts[3]})
	}
	return recs
}

// waitFor polls cond until it holds or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
