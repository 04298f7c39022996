package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

// flavor says how a runtime is configured.
type flavor int

const (
	flavorCrirt        flavor = iota
	flavorContainerdV2        // containerd 1.6: config version 2, one CRI plugin
	flavorContainerdV3        // containerd 2.x: config version 3, split CRI plugins
)

// runtimeDef is one runtime under test.
type runtimeDef struct {
	key     string // short name: directories, bridge
	name    string // column title
	flavor  flavor
	bin     string
	origin  string   // where bin was copied from
	shimDir string   // prepended to PATH for this daemon only (its shim)
	helpers []string // names of its per-pod or per-container processes
	net     int      // picks bridge and subnet
	config  string   // more config lines (cri-rt)
}

// env is what every runtime shares: the same runc, CNI plugins, hosts.toml
// and images.
type env struct {
	work     string
	runc     string
	cniBin   string
	certsDir string
	imgs     *images
	keep     bool
}

func bridgeName(key string) string { return "crbench-" + key }

// subnet of network n: 10.(200+n).0.0/16, private and unused by the
// project's tests (10.97, 10.99) and by this machine.
func subnet(n int) string { return fmt.Sprintf("10.%d.0.0/16", 200+n) }

// writeConflist writes the network every runtime uses, differing only in
// bridge, subnet and IPAM dir: bridge + host-local, portmap, loopback, as
// hack/critest.sh and test/framework do.
func writeConflist(confDir, name, bridge, sub, ipamDir string) (string, error) {
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`, name, bridge, ipamDir, sub)
	p := filepath.Join(confDir, "10-bench.conflist")
	return p, os.WriteFile(p, []byte(conf), 0o644)
}

// writeHostsToml points registryName at the local registry, in the
// containerd hosts.toml format all three runtimes read.
func writeHostsToml(certsDir, regHost string) error {
	d := filepath.Join(certsDir, registryName)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	// Both the server and a host entry name the local registry: containerd
	// 1.6 refuses a file without a host tree, and nothing may fall back to
	// resolving the made-up name.
	body := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+regHost, "http://"+regHost)
	return os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(body), 0o644)
}

// instance is one running daemon with a CRI client, on its own directory
// (root, state, socket, config, CNI conf dir, runc root).
type instance struct {
	def  *runtimeDef
	e    *env
	dir  string
	sock string
	proc *benchkit.Process
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient
}

func (in *instance) runcRoot() string { return filepath.Join(in.dir, "runc") }

// startInstance writes the runtime's config (plus extra lines, for
// cri-rt) and starts it, then waits until its CRI answers and reports
// runtime and network ready.
func startInstance(ctx context.Context, def *runtimeDef, e *env, dir string, extra ...string) (*instance, time.Duration, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, 0, err
	}
	in := &instance{def: def, e: e, dir: dir}
	confDir := filepath.Join(dir, "net.d")
	if _, err := writeConflist(confDir, "crbench-"+def.key, bridgeName(def.key), subnet(def.net), filepath.Join(dir, "ipam")); err != nil {
		return nil, 0, err
	}
	args, err := in.writeConfig(confDir, strings.Join(extra, ""))
	if err != nil {
		return nil, 0, err
	}
	var extraEnv []string
	if def.shimDir != "" {
		extraEnv = append(extraEnv, "PATH="+def.shimDir+":"+os.Getenv("PATH"))
	}
	start := time.Now()
	p, err := benchkit.StartProcess(def.bin, args, filepath.Join(dir, "daemon.log"), extraEnv...)
	if err != nil {
		return nil, 0, err
	}
	in.proc = p
	if err := in.connect(ctx, 60*time.Second); err != nil {
		in.proc.Stop(10 * time.Second)
		return nil, 0, fmt.Errorf("%s: %w\n%s", def.name, err, p.LogTail())
	}
	return in, time.Since(start), nil
}

func (in *instance) writeConfig(confDir, extra string) ([]string, error) {
	e, def, dir := in.e, in.def, in.dir
	cfg := filepath.Join(dir, "config.toml")
	var body string
	switch def.flavor {
	case flavorCrirt:
		in.sock = filepath.Join(dir, "state", "cri-rt.sock")
		body = fmt.Sprintf(`sandbox_image = %q
[runtimes.runc]
  path = %q
  root = %q
[cni]
  bin_dirs = [%q]
  conf_dir = %q
[registry]
  config_path = %q
`, e.imgs.pause, e.runc, in.runcRoot(), e.cniBin, confDir, e.certsDir) + def.config + extra
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return nil, err
		}
		return []string{"--config", cfg, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"), "--address", in.sock}, nil
	case flavorContainerdV2:
		in.sock = filepath.Join(dir, "containerd.sock")
		body = fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[8]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %[9]q
        Root = %[10]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), in.sock, filepath.Join(dir, "opt"),
			e.imgs.pause, e.cniBin, confDir, e.certsDir, e.runc, in.runcRoot())
	case flavorContainerdV3:
		in.sock = filepath.Join(dir, "containerd.sock")
		body = fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs", "io.containerd.snapshotter.v1.blockfile"]

[grpc]
  address = %[3]q

[plugins.'io.containerd.internal.v1.opt']
  path = %[4]q

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[5]q
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %[8]q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[6]q]
    conf_dir = %[7]q
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[9]q
        Root = %[10]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), in.sock, filepath.Join(dir, "opt"),
			e.imgs.pause, e.cniBin, confDir, e.certsDir, e.runc, in.runcRoot())
	}
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return nil, err
	}
	return []string{"--config", cfg}, nil
}

// connect waits until the CRI answers Version and Status says the runtime
// and the network are ready (containerd loads the CNI config after its
// socket is up).
func (in *instance) connect(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if in.proc.Exited() {
			return fmt.Errorf("exited: %v", in.proc.Err())
		}
		if in.conn == nil {
			if c, err := net.Dial("unix", in.sock); err == nil {
				c.Close()
				conn, err := grpc.NewClient("unix://"+in.sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
					grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
				if err != nil {
					return err
				}
				in.conn = conn
				in.rt = runtimeapi.NewRuntimeServiceClient(conn)
				in.img = runtimeapi.NewImageServiceClient(conn)
			}
		}
		if in.conn != nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := in.rt.Status(cctx, &runtimeapi.StatusRequest{})
			cancel()
			last = err
			if err == nil {
				ready := 0
				for _, c := range st.GetStatus().GetConditions() {
					if (c.Type == runtimeapi.RuntimeReady || c.Type == runtimeapi.NetworkReady) && c.Status {
						ready++
					}
				}
				if ready == 2 {
					return nil
				}
				last = fmt.Errorf("not ready: %v", st.GetStatus().GetConditions())
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// helperPids lists the daemon's shims or monitors: processes named like
// them whose command line names this instance's directory.
func (in *instance) helperPids() []int {
	var out []int
	for _, p := range listProcs() {
		if p.pid == in.proc.Pid() || !strings.Contains(p.cmdline, in.dir+"/") {
			continue
		}
		for _, h := range in.def.helpers {
			if p.name == h {
				out = append(out, p.pid)
			}
		}
	}
	return out
}

// removeAll removes every pod and container through the CRI, as kubelet
// would before a node drain: what the benchmark leaves is the runtime's
// own, not a leak.
func (in *instance) removeAll(ctx context.Context) error {
	var errs []error
	cs, err := in.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return err
	}
	for _, c := range cs.Containers {
		if _, err := in.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 10}); err != nil {
			errs = append(errs, err)
		}
		if _, err := in.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
			errs = append(errs, err)
		}
	}
	ps, err := in.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range ps.Items {
		if _, err := in.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, err)
		}
		if _, err := in.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shutdown removes what is left through the CRI, waits for the shims or
// monitors to end, stops the daemon (SIGTERM), then checks that nothing is
// left: no runc container, no helper process, no mount below the
// directory. What it finds is cleaned up and reported as an error. The
// directory is removed too when remove is set (and --keep is not).
func (in *instance) shutdown(remove bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if in.conn != nil && !in.proc.Exited() {
		if err := in.removeAll(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: removing pods: %w", in.def.name, err))
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(in.helperPids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if in.conn != nil {
		in.conn.Close()
	}
	if !in.proc.Stop(20 * time.Second) {
		errs = append(errs, fmt.Errorf("%s did not stop on SIGTERM within 20s; killed", in.def.name))
	}
	if err := checkRuncRoots(in.e.runc, in.runcRoot()); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", in.def.name, err))
	}
	if pids := in.helperPids(); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("%s: %d shim/monitor process(es) still running after all pods were removed: %v (killed)", in.def.name, len(pids), pids))
	}
	killBelow(in.dir)
	if err := benchkit.UnmountBelow(in.dir); err != nil {
		errs = append(errs, err)
	}
	if remove && !in.e.keep {
		if err := os.RemoveAll(in.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkRuncRoots lists the containers runc knows under root and below it
// (containerd's shim adds the namespace, k8s.io), deleting any it finds.
func checkRuncRoots(runc, root string) error {
	roots := []string{root}
	subs, _ := filepath.Glob(filepath.Join(root, "*"))
	for _, s := range subs {
		if st, err := os.Stat(filepath.Join(s)); err == nil && st.IsDir() {
			roots = append(roots, s)
		}
	}
	var errs []error
	for _, r := range roots {
		if _, err := os.Stat(r); err != nil {
			continue
		}
		out, err := exec.Command(runc, "--root", r, "list", "-q").Output()
		if err != nil {
			continue // not a runc root
		}
		ids := strings.Fields(string(out))
		if len(ids) == 0 {
			continue
		}
		for _, id := range ids {
			_ = exec.Command(runc, "--root", r, "delete", "-f", id).Run()
		}
		errs = append(errs, fmt.Errorf("runc --root %s list: %d container(s) left: %v (deleted)", r, len(ids), ids))
	}
	return errors.Join(errs...)
}

// versionOf runs bin with args and returns the first line of its output.
func versionOf(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	s := strings.TrimSpace(string(out))
	return strings.Join(strings.Fields(s), " ")
}
