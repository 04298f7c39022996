package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/netns"
)

// The floors are the same work done straight, with no runtime daemon: the
// pod as a network namespace wired by the same CNI conflist plus the
// pause program run by the same runc, the container as `runc run -d` of
// the app on a prepared bundle, exec as `runc exec`, and the registry
// transfer as curl. A runtime cannot beat them; the distance to them is
// what it adds.

// floor runs containers straight with runc.
type floor struct {
	runc     string
	dir      string
	root     string // runc --root
	rootfs   string // shared, read-only
	spec     map[string]any
	cni      *libcni.CNIConfig
	conflist *libcni.NetworkConfigList
	mu       sync.Mutex
	n        int
}

// setupFloor lays out a rootfs with the images' content (busybox with its
// applets, app, pause) and the CNI network on its own bridge.
func setupFloor(ctx context.Context, runc, cniBin, dir, pauseBin, appBin string, netIndex int) (*floor, error) {
	f := &floor{runc: runc, dir: dir, root: filepath.Join(dir, "runc"), rootfs: filepath.Join(dir, "rootfs")}
	for _, d := range []string{"bin", "tmp", "etc", "proc", "dev", "sys", "root"} {
		if err := os.MkdirAll(filepath.Join(f.rootfs, d), 0o755); err != nil {
			return nil, err
		}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return nil, err
	}
	if err := copyFile(bb, filepath.Join(f.rootfs, "bin/busybox")); err != nil {
		return nil, err
	}
	if err := copyFile(pauseBin, filepath.Join(f.rootfs, "bin/pause")); err != nil {
		return nil, err
	}
	if err := copyFile(appBin, filepath.Join(f.rootfs, "bin/app")); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := os.Link(filepath.Join(f.rootfs, "bin/busybox"), filepath.Join(f.rootfs, "bin", a)); err != nil {
			return nil, err
		}
	}
	// The default spec of this runc, as a runtime would start from.
	specDir := filepath.Join(dir, "spec")
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, runc, "spec", "--bundle", specDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(specDir, "config.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &f.spec); err != nil {
		return nil, err
	}
	conf, err := writeConflist(filepath.Join(dir, "net.d"), "crbench-floor", bridgeName("floor"), subnet(netIndex), filepath.Join(dir, "ipam"))
	if err != nil {
		return nil, err
	}
	if f.conflist, err = libcni.ConfListFromFile(conf); err != nil {
		return nil, err
	}
	f.cni = libcni.NewCNIConfigWithCacheDir([]string{cniBin}, filepath.Join(dir, "cni-cache"), nil)
	return f, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// floorPod is a pod done by hand: a pinned netns and a pause container.
type floorPod struct {
	id, netns string
	ctrs      []string
}

func (f *floor) nextID(prefix string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

// bundle writes a bundle (config.json only; the rootfs is shared) that
// runs args, in the network namespace at nsPath if given.
func (f *floor) bundle(id string, args []string, nsPath string) (string, error) {
	b, _ := json.Marshal(f.spec)
	var spec map[string]any
	_ = json.Unmarshal(b, &spec)
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	spec["root"] = map[string]any{"path": f.rootfs, "readonly": true}
	spec["hostname"] = id
	linux := spec["linux"].(map[string]any)
	linux["cgroupsPath"] = cgroupRoot + "/floor/" + id
	if nsPath != "" {
		nss := linux["namespaces"].([]any)
		for i, ns := range nss {
			if m := ns.(map[string]any); m["type"] == "network" {
				nss[i] = map[string]any{"type": "network", "path": nsPath}
			}
		}
	}
	dir := filepath.Join(f.dir, "bundles", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, _ := json.Marshal(spec)
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644)
}

// runcCmd runs runc. Its output goes to a file, not a pipe: `run -d`
// hands its stdio to the container, which would hold a pipe open for as
// long as it runs.
func (f *floor) runcCmd(ctx context.Context, args ...string) error {
	out, err := os.CreateTemp(f.dir, "runc-out-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	return f.runcTo(ctx, out, args...)
}

// runcTo runs runc with its output (and, for run -d, the container's) in
// out.
func (f *floor) runcTo(ctx context.Context, out *os.File, args ...string) error {
	cmd := exec.CommandContext(ctx, f.runc, append([]string{"--root", f.root}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("runc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// run is `runc run -d` of a fresh bundle; the container's output goes to
// out.log in the bundle.
func (f *floor) run(ctx context.Context, id string, args []string, nsPath string) error {
	b, err := f.bundle(id, args, nsPath)
	if err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(b, "out.log"))
	if err != nil {
		return err
	}
	defer out.Close()
	return f.runcTo(ctx, out, "run", "-d", "--bundle", b, id)
}

func (f *floor) rtConf(p *floorPod) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.id, NetNS: p.netns, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "crbench"}, {"K8S_POD_NAME", p.id}, {"K8S_POD_INFRA_CONTAINER_ID", p.id}}}
}

// podUp: netns, CNI ADD, pause.
func (f *floor) podUp(ctx context.Context) (*floorPod, time.Duration, error) {
	p := &floorPod{id: f.nextID("pod")}
	p.netns = filepath.Join(f.dir, "netns", p.id)
	start := time.Now()
	if err := netns.New(p.netns); err != nil {
		return nil, 0, err
	}
	if _, err := f.cni.AddNetworkList(ctx, f.conflist, f.rtConf(p)); err != nil {
		_ = netns.Remove(p.netns)
		return nil, 0, fmt.Errorf("CNI ADD: %w", err)
	}
	if err := f.run(ctx, p.id, []string{"/bin/pause"}, p.netns); err != nil {
		return p, 0, err
	}
	return p, time.Since(start), nil
}

// ctrUp: the app container in the pod's network namespace.
func (f *floor) ctrUp(ctx context.Context, p *floorPod) (string, time.Duration, error) {
	id := f.nextID("ctr")
	start := time.Now()
	if err := f.run(ctx, id, []string{"/bin/app"}, p.netns); err != nil {
		return "", 0, err
	}
	p.ctrs = append(p.ctrs, id)
	return id, time.Since(start), nil
}

// stop is what StopContainer + RemoveContainer do at least: a signal
// (`runc kill`), wait for the process to end (a pidfd, no polling), then
// `runc delete`. (`runc delete -f` would poll for the end every 100 ms.)
// The pid is read before the clock starts.
func (f *floor) stop(ctx context.Context, id, sig string) (time.Duration, error) {
	pid, err := f.initPid(id)
	if err != nil {
		return 0, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	start := time.Now()
	if err := f.runcCmd(ctx, "kill", id, sig); err != nil {
		return 0, err
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 30_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("waiting for %s to exit: %w", id, err)
		}
		if n == 0 {
			return 0, fmt.Errorf("%s did not exit within 30s of SIG%s", id, sig)
		}
		break
	}
	if err := f.runcCmd(ctx, "delete", id); err != nil {
		return 0, err
	}
	d := time.Since(start)
	_ = os.RemoveAll(filepath.Join(f.dir, "bundles", id))
	return d, nil
}

// initPid reads the container's init pid from runc's state file.
func (f *floor) initPid(id string) (int, error) {
	b, err := os.ReadFile(filepath.Join(f.root, id, "state.json"))
	if err != nil {
		return 0, err
	}
	var st struct {
		Pid int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Pid == 0 {
		return 0, fmt.Errorf("runc state of %s: no init pid (%v)", id, err)
	}
	return st.Pid, nil
}

// ctrDown stops (SIGTERM, once the app is ready: untimed) and deletes a
// container of a pod.
func (f *floor) ctrDown(ctx context.Context, p *floorPod, id string) (time.Duration, error) {
	if err := waitReady(ctx, filepath.Join(f.dir, "bundles", id, "out.log")); err != nil {
		return 0, err
	}
	d, err := f.stop(ctx, id, "TERM")
	for i, c := range p.ctrs {
		if c == id {
			p.ctrs = append(p.ctrs[:i], p.ctrs[i+1:]...)
			break
		}
	}
	return d, err
}

// podDown: the containers, then pause killed and deleted, CNI DEL,
// netns unpinned. Only the pod's own part is timed.
func (f *floor) podDown(ctx context.Context, p *floorPod) (time.Duration, error) {
	var errs []error
	for len(p.ctrs) > 0 {
		if _, err := f.ctrDown(ctx, p, p.ctrs[0]); err != nil {
			errs = append(errs, err)
			_ = f.runcCmd(ctx, "delete", "-f", p.ctrs[0])
		}
	}
	d, err := f.stop(ctx, p.id, "KILL") // as containerd stops a sandbox
	if err != nil {
		errs = append(errs, err)
		_ = f.runcCmd(ctx, "delete", "-f", p.id)
	}
	start := time.Now()
	errs = append(errs, f.cni.DelNetworkList(ctx, f.conflist, f.rtConf(p)))
	errs = append(errs, netns.Remove(p.netns))
	d += time.Since(start)
	_ = os.RemoveAll(filepath.Join(f.dir, "bundles", p.id))
	return d, errors.Join(errs...)
}

// exec: `runc exec ID /bin/true`.
func (f *floor) exec(ctx context.Context, id string) (time.Duration, error) {
	start := time.Now()
	err := f.runcCmd(ctx, "exec", id, "/bin/true")
	return time.Since(start), err
}

// measureFloors runs pass's share of the runtimes' scenarios, straight.
func measureFloors(ctx context.Context, f *floor, opts options, pass int, res results) (err error) {
	var live []*floorPod
	defer func() {
		for _, p := range live {
			_, derr := f.podDown(context.Background(), p)
			err = errors.Join(err, derr)
		}
	}()
	iterations := share(opts.iterations, pass, opts.passes)
	for i := -opts.warmup; i < iterations; i++ {
		p, d1, err := f.podUp(ctx)
		if p != nil {
			live = append(live, p)
		}
		if err != nil {
			return err
		}
		id, d2, err := f.ctrUp(ctx, p)
		if err != nil {
			return err
		}
		d3, err := f.ctrDown(ctx, p, id)
		if err != nil {
			return err
		}
		d4, err := f.podDown(ctx, p)
		live = live[:len(live)-1]
		if err != nil {
			return err
		}
		if i >= 0 {
			res.addDur("runpod", d1)
			res.addDur("createstart", d2)
			res.addDur("stoprm", d3)
			res.addDur("stoprmpod", d4)
			res.addDur("lifecycle", d1+d2+d3+d4)
		}
	}

	if n := share(opts.execs, pass, opts.passes); n > 0 {
		p, _, err := f.podUp(ctx)
		if p != nil {
			live = append(live, p)
		}
		if err != nil {
			return err
		}
		id, _, err := f.ctrUp(ctx, p)
		if err != nil {
			return err
		}
		for i := -opts.warmup; i < n; i++ {
			d, err := f.exec(ctx, id)
			if err != nil {
				return err
			}
			if i >= 0 {
				res.addDur("exec", d)
			}
		}
		_, err = f.podDown(ctx, p)
		live = live[:0]
		if err != nil {
			return err
		}
	}

	for range share(opts.rounds, pass, opts.passes) {
		pods := make([]*floorPod, opts.concurrent)
		errs := make([]error, opts.concurrent)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range pods {
			wg.Go(func() {
				p, _, err := f.podUp(ctx)
				pods[i] = p
				if err == nil {
					_, _, err = f.ctrUp(ctx, p)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		up := time.Since(start)
		for _, p := range pods {
			if p != nil {
				live = append(live, p)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		start = time.Now()
		for i, p := range pods {
			wg.Go(func() { _, errs[i] = f.podDown(ctx, p) })
		}
		wg.Wait()
		down := time.Since(start)
		live = live[:0]
		if err := errors.Join(errs...); err != nil {
			return err
		}
		res.addDur("conc", up)
		res.addDur("concdown", down)
	}
	progress(fmt.Sprintf("floor, pass %d: pod %s, container %s", pass+1, res.fmtP50("runpod"), res.fmtP50("createstart")))
	return nil
}
