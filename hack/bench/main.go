// Command bench compares cri-rt with containerd's CRI plugin (Debian's
// containerd 1.6 and containerd 2.4) on this machine, speaking CRI to each
// directly over gRPC. Every runtime gets the same runc, the same CNI
// conflist (on its own bridge and subnet), the same images from the same
// local registry (through the same hosts.toml), and its own root, state,
// socket and config; each runs alone while it is measured. It also times
// the floor: the same work done straight (runc run -d on a prepared bundle,
// a netns wired by the same CNI plugins, curl from the registry). It
// prints a table with the ratio cri-rt / best containerd and writes it to
// docs/benchmarks.md.
//
//	make bench                     # installs containerd 1.6, builds 2.4 (cached), runs this
//	go run ./hack/bench --cri-rt bin/cri-rt [--iterations 30] [--out docs/benchmarks.md] [--keep]
//
// It needs root, and hack/bench/bench.sh's dependencies. It leaves no
// process, mount, bridge, cgroup or directory behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

type options struct {
	iterations, warmup, execs, lists, rounds, concurrent, containers, listPods, pullRuns, passes, profile int

	sizeMB, layers int
	seed           uint64

	criRT, containerd16, containerd24, runc, cniBin string
	only                                            string
	out, dir, command                               string
	keep                                            bool
}

func parseFlags() options {
	var o options
	home, _ := os.UserHomeDir()
	cache := filepath.Join(home, ".cache", "cri-rt")
	flag.IntVar(&o.iterations, "iterations", 36, "pod lifecycles timed per runtime (p50/p95 of each call)")
	flag.IntVar(&o.warmup, "warmup", 3, "untimed iterations before each timed series")
	flag.IntVar(&o.execs, "execs", 40, "ExecSync calls timed")
	flag.IntVar(&o.lists, "lists", 40, "ListContainers calls timed")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the concurrent start (median wall time and memory)")
	flag.IntVar(&o.concurrent, "concurrent", 20, "pods started at once (and running for the memory figures)")
	flag.IntVar(&o.containers, "containers", 100, "containers running while ListContainers is timed")
	flag.IntVar(&o.listPods, "list-pods", 10, "pods those containers are spread over")
	flag.IntVar(&o.passes, "passes", 3, "passes the lifecycle, exec and concurrent series are spread over, runtimes in rotating order")
	flag.IntVar(&o.profile, "profile", 10, "pod lifecycles on a cri-rt with metrics on, to break its time down (0: none)")
	flag.IntVar(&o.pullRuns, "pull-runs", 3, "cold + shared pulls per runtime, each on a fresh daemon and root")
	flag.IntVar(&o.sizeMB, "size-mb", 530, "uncompressed size of the pull image in MB (10^6 bytes); it compresses about 3:1")
	flag.IntVar(&o.layers, "layers", 6, "layers of the pull image")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated pull image (same seed, same digests; cached)")
	flag.StringVar(&o.criRT, "cri-rt", "bin/cri-rt", "cri-rt binary (cri-rt-monitor beside it)")
	flag.StringVar(&o.containerd16, "containerd16", "/usr/bin/containerd", "Debian's containerd 1.6 (its shim is in /usr/bin)")
	flag.StringVar(&o.containerd24, "containerd24", filepath.Join(cache, "containerd-v2.4.2", "containerd"), "containerd 2.4 (its containerd-shim-runc-v2 beside it)")
	flag.StringVar(&o.runc, "runc", "/usr/local/sbin/runc", "the runc every runtime uses")
	flag.StringVar(&o.cniBin, "cni-bin", "/usr/lib/cni", "CNI plugin directory every runtime uses")
	flag.StringVar(&o.only, "only", "", "comma-separated runtimes to measure (crirt,ctrd16,ctrd24; default all), for debugging")
	flag.StringVar(&o.out, "out", "", "Markdown file to write the report into (between its markers), e.g. docs/benchmarks.md")
	flag.StringVar(&o.dir, "dir", "", "where to make the work directory (default $TMPDIR or /tmp)")
	flag.StringVar(&o.command, "command", "", "the command to show as having produced the report (default: this one)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, configs) for debugging")
	flag.Parse()
	if o.iterations < 1 || o.warmup < 0 || o.execs < 1 || o.lists < 1 || o.rounds < 1 || o.concurrent < 1 ||
		o.listPods < 1 || o.containers < o.listPods || o.pullRuns < 1 || o.passes < 1 || o.profile < 0 || o.layers < 2 || o.sizeMB < 1 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	return o
}

func main() {
	// Shims and monitors detach from their daemon; on a machine whose PID
	// 1 does not reap, something must. Without hack/reaper around it, the
	// benchmark reaps for itself: it re-runs itself as a child of a
	// subreaper.
	if os.Getenv("CRI_RT_REAPER") == "" {
		os.Exit(reap())
	}
	opts := parseFlags()
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		progress("interrupted: cleaning up (interrupt again after a second to quit at once)")
		cancel()
		// A reaper in between forwards the terminal's Ctrl-C that this
		// process also got: only a later one means "quit now".
		first := time.Now()
		for range sigs {
			if time.Since(first) > time.Second {
				os.Exit(130)
			}
		}
	}()
	err := run(ctx, opts)
	if ctx.Err() != nil {
		err = errors.Join(errors.New("interrupted"), err)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// reap runs this program again as a child, as hack/reaper does, and reaps
// every process orphaned below it.
func reap() int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "bench: subreaper:", err)
		return 1
	}
	// The terminal's Ctrl-C reaches the child directly (same process
	// group); a SIGTERM sent to this process is passed on.
	signal.Ignore(syscall.SIGINT)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM)
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "CRI_RT_REAPER=1")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	code := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return code
		}
		if pid == cmd.Process.Pid {
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			return code
		}
	}
}

func runtimeDefs(opts options) ([]*runtimeDef, error) {
	crirt, err := filepath.Abs(opts.criRT)
	if err != nil {
		return nil, err
	}
	all := []*runtimeDef{
		{key: "crirt", name: "cri-rt", flavor: flavorCrirt, bin: crirt, helpers: []string{"cri-rt-monitor"}, net: 1},
		{key: "ctrd16", name: "containerd 1.6", flavor: flavorContainerdV2, bin: opts.containerd16, helpers: []string{"containerd-shim-runc-v2"}, net: 2},
		{key: "ctrd24", name: "containerd 2.4", flavor: flavorContainerdV3, bin: opts.containerd24, shimDir: filepath.Dir(opts.containerd24), helpers: []string{"containerd-shim-runc-v2"}, net: 3},
	}
	for _, d := range all {
		if _, err := os.Stat(d.bin); err != nil {
			return nil, fmt.Errorf("%s: %w (hack/bench/bench.sh installs and builds the runtimes)", d.name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(crirt), "cri-rt-monitor")); err != nil {
		return nil, fmt.Errorf("cri-rt-monitor not beside %s (make build): %w", crirt, err)
	}
	if _, err := os.Stat(filepath.Join(all[2].shimDir, "containerd-shim-runc-v2")); err != nil {
		return nil, fmt.Errorf("containerd 2.4's shim: %w", err)
	}
	// NRI is off in every runtime: no plugin is used, and its socket is
	// one fixed path for the whole machine (/var/run/nri/nri.sock), which
	// a benchmark must not take from, or hand to, anything else running.
	// cri-rt binaries from before NRI have no [nri] table.
	if out, err := exec.Command(crirt, "config", "default").Output(); err == nil && strings.Contains(string(out), "\n[nri]") {
		all[0].config = "[nri]\n  enable = false\n"
	}
	if opts.only == "" {
		return all, nil
	}
	want := strings.Split(opts.only, ",")
	var out []*runtimeDef
	for _, d := range all {
		if slices.Contains(want, d.key) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--only %q names no runtime", opts.only)
	}
	return out, nil
}

// run does everything; every step registers its cleanup, so an error or a
// Ctrl-C anywhere leaves nothing behind.
func run(ctx context.Context, opts options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (runtimes, mounts, network namespaces)")
	}
	defs, err := runtimeDefs(opts)
	if err != nil {
		return err
	}
	for _, tool := range []string{opts.runc, filepath.Join(opts.cniBin, "bridge")} {
		if _, err := os.Stat(tool); err != nil {
			return fmt.Errorf("%w (make deps)", err)
		}
	}
	for _, tool := range []string{"docker-registry", "curl", "busybox", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s: %w (make deps)", tool, err)
		}
	}
	// A run that was killed may have left bridges or cgroups: start clean.
	cleanupHost(append(slices.Clone(defs), &runtimeDef{key: "floor"}))
	hostDirs := absentHostDirs()

	work, err := os.MkdirTemp(opts.dir, "crbench-")
	if err != nil {
		return err
	}
	// Traversable, like /run and /var/lib: container processes run as
	// other users and must reach their rootfs below it.
	if err := os.Chmod(work, 0o711); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, finalCleanup(work, opts, defs, hostDirs)) }()
	// bin/ is shared with whoever builds in this tree meanwhile: the
	// binaries measured are copies taken now.
	for _, d := range defs {
		if d.flavor == flavorCrirt {
			dir := benchkit.Mkdir(work, "bin")
			for _, b := range []string{filepath.Base(d.bin), "cri-rt-monitor"} {
				if err := copyFile(filepath.Join(filepath.Dir(d.bin), b), filepath.Join(dir, b)); err != nil {
					return err
				}
			}
			d.origin, d.bin = d.bin, filepath.Join(dir, filepath.Base(d.bin))
		}
	}
	e := &env{work: work, runc: opts.runc, cniBin: opts.cniBin, certsDir: filepath.Join(work, "certs.d"), keep: opts.keep}
	loadBefore := benchkit.LoadAvg()
	begin := time.Now()
	load := sampleLoad(ctx)

	// Images.
	home, _ := os.UserHomeDir()
	imgs, err := bigImages(ctx, filepath.Join(home, ".cache", "cri-rt"), opts)
	if err != nil {
		return err
	}
	e.imgs = imgs
	progress("building pause and app")
	pauseBin, err := buildProgram(ctx, work, "pause", "github.com/cri-rt/cri-rt/test/critest/images/progs/pause")
	if err != nil {
		return err
	}
	appBin, err := buildProgram(ctx, work, "app", "github.com/cri-rt/cri-rt/hack/bench/app")
	if err != nil {
		return err
	}
	progress("starting docker-registry and pushing the images")
	reg, err := benchkit.StartRegistry(ctx, benchkit.Mkdir(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	if imgs.pause, imgs.app, err = pushSmallImages(ctx, reg.Host, pauseBin, appBin); err != nil {
		return err
	}
	for _, im := range []*benchkit.Image{imgs.bigImg, imgs.bigImg2} {
		if err := reg.Push(ctx, im); err != nil {
			return fmt.Errorf("pushing %s: %w", im.Tag, err)
		}
	}
	if err := writeHostsToml(e.certsDir, reg.Host); err != nil {
		return err
	}

	floorRes := results{}
	fl, err := setupFloor(ctx, opts.runc, opts.cniBin, filepath.Join(work, "floor"), pauseBin, appBin, 0)
	if err != nil {
		return err
	}
	res := map[string]results{}
	for _, d := range defs {
		res[d.key] = results{}
	}

	// Everything but the pulls, in passes: in each, the floor and then
	// each runtime alone do their share, in an order that rotates from
	// pass to pass, so that a slow phase of the machine (or the position
	// in the sequence) does not land on one runtime only.
	type job struct {
		name string
		fn   func(pass int) error
	}
	jobs := []job{{"floor", func(pass int) error { return measureFloors(ctx, fl, opts, pass, floorRes) }}}
	for _, d := range defs {
		jobs = append(jobs, job{d.name, func(pass int) error { return measureRuntime(ctx, d, e, opts, pass, res[d.key]) }})
	}
	for pass := range opts.passes {
		for k := range jobs {
			j := jobs[(k+pass)%len(jobs)]
			if err := j.fn(pass); err != nil {
				return fmt.Errorf("%s, pass %d: %w", j.name, pass+1, err)
			}
		}
	}

	// The pulls, run by run: the floors (curl, unpack) and then each
	// runtime on a fresh daemon and root, rotating too.
	all := imgs.bigImg.Layers
	fresh := imgs.bigImg2.Layers[len(all)-1:]
	var seq []float64
	for r := range opts.pullRuns {
		d, err := benchkit.TimeCurl(ctx, reg.BlobURLs(all), true)
		if err != nil {
			return err
		}
		floorRes.addDur("pullcold", d)
		d, err = benchkit.TimeCurl(ctx, reg.BlobURLs(all), false)
		if err != nil {
			return err
		}
		seq = append(seq, d.Seconds())
		d, err = benchkit.TimeCurl(ctx, reg.BlobURLs(fresh), false)
		if err != nil {
			return err
		}
		floorRes.addDur("pullshared", d)
		dst := filepath.Join(work, "untar")
		benchkit.SyncDisks()
		d, err = benchkit.TimeUntar(ctx, benchkit.LayerPaths(all), dst)
		if err != nil {
			return err
		}
		floorRes.addDur("unpack", d)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		benchkit.SyncDisks()
		for k := range defs {
			def := defs[(k+r)%len(defs)]
			if err := pullRun(ctx, def, e, r+1, res[def.key]); err != nil {
				return fmt.Errorf("%s: pull: %w", def.name, err)
			}
		}
	}

	// Where cri-rt's time goes, from its own metrics.
	var prof *crirtProfile
	if defs[0].flavor == flavorCrirt && opts.profile > 0 {
		progress("cri-rt: profile from its metrics")
		if prof, err = profileCrirt(ctx, defs[0], e, opts.warmup, opts.profile); err != nil {
			return fmt.Errorf("cri-rt profile: %w", err)
		}
	}

	cmdline := opts.command
	if cmdline == "" {
		cmdline = benchkit.CommandLine("go run ./hack/bench")
	}
	header := [][2]string{
		{"command", cmdline},
		{"date", time.Now().UTC().Format("2006-01-02 15:04 UTC") + fmt.Sprintf(" (%.1f min)", time.Since(begin).Minutes())},
		{"machine", fmt.Sprintf("%s; 1-min load average %s before, %s during the run (every 10 s), %s after; work dir on %s", machineInfo(), loadBefore, load(), benchkit.LoadAvg(), benchkit.FSInfo(work))},
	}
	for _, d := range defs {
		header = append(header, [2]string{d.name, describeRuntime(d)})
	}
	header = append(header,
		[2]string{"runc", opts.runc + ", " + versionOf(opts.runc, "--version")},
		[2]string{"CNI", fmt.Sprintf("%s (containernetworking-plugins %s): bridge + host-local, portmap, loopback; one bridge and /16 per runtime", opts.cniBin, dpkgVersion("containernetworking-plugins"))},
		[2]string{"registry", fmt.Sprintf("docker-registry %s on %s (http, filesystem), reached as %s through the same hosts.toml", dpkgVersion("docker-registry"), reg.Host, registryName)},
		[2]string{"images", fmt.Sprintf("sandbox: the project's pause; containers: busybox-static + hack/bench/app (prints ready, exits on SIGTERM; each stop waits, untimed, for the ready line in the container log); pull: %s", imgs.info)},
		[2]string{"method", methodNote(opts, percentile(seq, 50))},
	)
	t := buildTable(header, defs, res, floorRes)
	t.profile = prof.lines()
	t.memory = memoryLines(defs, res)
	fmt.Println()
	printText(os.Stdout, t)
	if opts.out != "" {
		if err := writeDoc(opts.out, markdown(t)); err != nil {
			return err
		}
		progress("wrote " + opts.out)
	}
	return nil
}

func methodNote(o options, curlSeq float64) string {
	return fmt.Sprintf("one runtime at a time, each on its own root/state/socket/config; the series spread over %d passes, in each the floor and the runtimes in turn, in an order rotating from pass to pass (a daemon restarted per pass, its images kept); "+
		"%d timed pod lifecycles, one pod at a time, after %d warm-up ones per pass "+
		"(RunPodSandbox; CreateContainer+StartContainer; StopContainer (grace 30 s, the container exits on SIGTERM)+RemoveContainer; StopPodSandbox+RemovePodSandbox; lifecycle = their sum); "+
		"pods are kubelet-like (BestEffort, own cgroupfs parent, pod netns/IPC, log dir); "+
		"%d ExecSync of /bin/true in a running container; %d rounds of %d pods (sandbox + container) started at once, memory read %s after each round, then stopped and removed at once; "+
		"ListContainers timed %d times with %d running containers in %d pods; PullImage on a fresh daemon and root per run (%d runs, rotating order), sync before each pull; "+
		"p50/p95 interpolated between ranks, single figures are medians; memory from /proc/PID/smaps_rollup; "+
		"floors: netns (pinned) + CNI ADD + runc run -d of pause (pod), runc run -d of the app in that netns (container), runc kill TERM + wait (pidfd) + runc delete (stop+remove), runc exec (exec), curl of the %d blobs in parallel (cold pull; %.2f s one after another) and of the new layer (shared pull)",
		o.passes, o.iterations, o.warmup, o.execs, o.rounds, o.concurrent, settle, o.lists, o.containers, o.listPods, o.pullRuns, o.layers, curlSeq)
}

func describeRuntime(d *runtimeDef) string {
	switch d.flavor {
	case flavorCrirt:
		nri := ""
		if d.config != "" {
			nri = "; NRI off"
		}
		return fmt.Sprintf("%s and cri-rt-monitor beside it, copied at the start (%s)%s", d.origin, versionOf(d.bin, "version"), nri)
	default:
		shim := "/usr/bin/containerd-shim-runc-v2"
		if d.shimDir != "" {
			shim = filepath.Join(d.shimDir, "containerd-shim-runc-v2")
		}
		sv := strings.ReplaceAll(versionOf(shim, "-v"), shim+": ", "")
		off := "btrfs/zfs/devmapper/aufs snapshotters off (1.6 has no NRI)"
		if d.flavor == flavorContainerdV3 {
			off = "btrfs/zfs/devmapper/erofs/blockfile snapshotters and NRI off"
		}
		return fmt.Sprintf("%s (%s), shim %s (%s); CRI: restrict_oom_score_adj, overlayfs, runc BinaryName and Root set, %s", d.bin, versionOf(d.bin, "--version"), shim, sv, off)
	}
}

func dpkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "?"
	}
	return string(out)
}

// containerdHostDirs are made outside its root and state by containerd
// whatever its config says: the shim socket dir (fixed at /run/containerd/s)
// and go-cni's result cache. They are empty once every pod is gone.
var containerdHostDirs = []string{"/run/containerd/s", "/run/containerd", "/var/lib/cni/results", "/var/lib/cni"}

// absentHostDirs lists those that do not exist yet, deepest first: the
// run removes them at the end.
func absentHostDirs() []string {
	var out []string
	for _, d := range containerdHostDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			out = append(out, d)
		}
	}
	return out
}

// cleanupHost removes the bridges and cgroups benchmark runs make.
func cleanupHost(defs []*runtimeDef) []string {
	var removed []string
	for _, d := range defs {
		br := bridgeName(d.key)
		if exec.Command("ip", "link", "show", br).Run() == nil {
			_ = exec.Command("ip", "link", "del", br).Run()
			removed = append(removed, "bridge "+br)
		}
	}
	ctrls, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupRoot)
	for _, c := range ctrls {
		var dirs []string
		_ = filepath.WalkDir(c, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = unix.Rmdir(dirs[i])
		}
	}
	return removed
}

// finalCleanup stops what is left, deletes bridges and cgroups, checks
// that nothing is left running or mounted and removes the work dir.
func finalCleanup(work string, opts options, defs []*runtimeDef, hostDirs []string) error {
	var errs []error
	if err := checkRuncRoots(opts.runc, filepath.Join(work, "floor", "runc")); err != nil {
		errs = append(errs, fmt.Errorf("floor: %w", err))
	}
	if pids := killBelow(work); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("processes left under %s: %v (killed)", work, pids))
		time.Sleep(200 * time.Millisecond)
	}
	if m := benchkit.MountsBelow(work); len(m) > 0 {
		errs = append(errs, fmt.Errorf("%d mount(s) left under %s (unmounted): %v", len(m), work, m))
		errs = append(errs, benchkit.UnmountBelow(work))
	}
	cleanupHost(append(slices.Clone(defs), &runtimeDef{key: "floor"}))
	for _, d := range hostDirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("%s, made by a runtime during the run, is not empty: %w", d, err))
		}
	}
	ctrls, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupRoot)
	if len(ctrls) > 0 {
		errs = append(errs, fmt.Errorf("cgroups left (not empty): %v", ctrls))
	}
	if opts.keep {
		progress("kept " + work)
	} else if err := os.RemoveAll(work); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	progress("cleanup: no process, mount, bridge or cgroup left")
	return nil
}

func progress(msg string) {
	fmt.Fprintf(os.Stderr, "bench: %s\n", msg)
}

// machineInfo describes the machine, with its cgroup version and Go.
func machineInfo() string {
	cg := "cgroup v1"
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		cg = "cgroup v2"
	}
	return benchkit.MachineInfo("cores", cg, "Go "+runtime.Version())
}

// sampleLoad reads the load average every 10 s until ctx ends; the
// function it returns summarises the samples so far. Other work on the
// machine skews every figure, and this shows how much there was.
func sampleLoad(ctx context.Context) func() string {
	var mu sync.Mutex
	var xs []float64
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				var v float64
				if _, err := fmt.Sscan(benchkit.LoadAvg(), &v); err == nil {
					mu.Lock()
					xs = append(xs, v)
					mu.Unlock()
				}
			}
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf("median %.2f, max %.2f", percentile(xs, 50), slices.Max(xs))
	}
}
