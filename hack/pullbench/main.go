// Command pullbench measures how fast cri-rt pulls a large image from a
// local registry and sets that against the floors of the same work done
// alone on the same machine: the transfer (curl) and the decompression
// (gunzip, and gunzip+untar). It is a benchmark to read, not a test: it
// asserts nothing about the times.
//
//	make bench-pull
//	go run ./hack/pullbench --cri-rt bin/cri-rt [--runs 3] [--size-mb 530] [--layers 6] [--markdown] [--keep]
//
// It needs root (cri-rt does), docker-registry and curl (make deps).
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
	"strings"
	"syscall"
	"time"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

type options struct {
	runs     int
	sizeMB   int
	layers   int
	seed     uint64
	keep     bool
	markdown bool
	criRT    string
	dir      string
}

func parseFlags() options {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "repetitions of each measurement (median and min are reported)")
	flag.IntVar(&o.sizeMB, "size-mb", 530, "uncompressed size of the image in MB (10^6 bytes); it compresses about 3:1")
	flag.IntVar(&o.layers, "layers", 6, "number of layers of the image (at least 2)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated content (same seed, same image digests)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (layers, registry storage, cri-rt roots and logs) for debugging")
	flag.BoolVar(&o.markdown, "markdown", false, "print the results as Markdown")
	flag.StringVar(&o.criRT, "cri-rt", "", "cri-rt binary (default: build ./cmd/cri-rt into the work directory)")
	flag.StringVar(&o.dir, "dir", "", "where to make the work directory, e.g. on the disk of /var/lib (default: $TMPDIR or /tmp)")
	flag.Parse()
	if o.runs < 1 || o.sizeMB < 1 || o.layers < 2 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	return o
}

func main() {
	opts := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// Cleanup is under way; a second Ctrl-C ends the program at once
		// (the children still die with it, see benchkit.StartProcess).
		stop()
	}()
	err := run(ctx, opts)
	if ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		os.Exit(1)
	}
}

// run does everything; each step registers its own cleanup, so an error or
// Ctrl-C anywhere leaves no process, mount or directory behind.
func run(ctx context.Context, opts options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("cri-rt needs root: run as root")
	}
	work, err := os.MkdirTemp(opts.dir, "pullbench-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, removeWork(work, opts.keep)) }()

	bin, err := crirtBinary(ctx, opts.criRT, work)
	if err != nil {
		return err
	}
	img, img2, genInfo, err := generate(ctx, filepath.Join(work, "layers"), opts)
	if err != nil {
		return err
	}
	progress("starting docker-registry and pushing")
	reg, err := benchkit.StartRegistry(ctx, benchkit.Mkdir(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	for _, im := range []*benchkit.Image{img, img2} {
		if err := reg.Push(ctx, im); err != nil {
			return fmt.Errorf("pushing %s: %w", im.Tag, err)
		}
	}
	c, err := setupCrirt(bin, work, reg.Host, opts.keep)
	if err != nil {
		return err
	}
	ms, steps := plan(c, reg, work, img, img2, opts.keep)
	loadBefore := benchkit.LoadAvg()
	if err := measure(ctx, opts.runs, ms, steps); err != nil {
		return err
	}
	h := header{
		command:  benchkit.CommandLine("go run ./hack/pullbench"),
		machine:  fmt.Sprintf("%s; load average %s before, %s after; work dir on %s", machineInfo(), loadBefore, benchkit.LoadAvg(), benchkit.FSInfo(work)),
		crirt:    c.describe(),
		registry: registryVersion() + " on " + reg.Host + " (http, filesystem storage)",
		image:    genInfo,
		method:   methodNote(opts.runs, len(img.Layers)),
	}
	if opts.markdown {
		printMarkdown(os.Stdout, h, ms)
	} else {
		printText(os.Stdout, h, ms)
	}
	return nil
}

// crirtBinary returns the binary to benchmark, building it if none is given.
func crirtBinary(ctx context.Context, given, work string) (string, error) {
	if given == "" {
		progress("building cri-rt")
		return buildCrirt(ctx, work)
	}
	abs, err := filepath.Abs(given)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("--cri-rt: %w (make build)", err)
	}
	return abs, nil
}

// generate writes the layers of both images: the big one, and the second
// one that shares all its layers but the last, which is a new one.
func generate(ctx context.Context, dir string, opts options) (img, img2 *benchkit.Image, info string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, "", err
	}
	progress(fmt.Sprintf("generating %d + 1 layers (%d MB + %d MB) in %s", opts.layers, opts.sizeMB, benchkit.NewLayerMB, dir))
	start := time.Now()
	spec := benchkit.PullSpec{Seed: opts.seed, SizeMB: opts.sizeMB, Layers: opts.layers}
	layers, err := spec.GenerateLayers(ctx, dir)
	if err != nil {
		return nil, nil, "", err
	}
	took := time.Since(start)
	if img, img2, err = benchkit.NewPullImages(layers); err != nil {
		return nil, nil, "", err
	}
	info = describeImages(img, layers[opts.layers], took)
	progress(info)
	return img, img2, info, nil
}

func describeImages(img *benchkit.Image, newLayer *benchkit.Layer, took time.Duration) string {
	c, u := img.Sizes()
	var files, dirs int
	for _, l := range img.Layers {
		files += l.Files
		dirs += l.Dirs
	}
	return fmt.Sprintf("%s:1 = %d layers, %.1f MB tar, %.1f MB gzip (ratio %.2f), %d files, %d dirs; %s:2 = first %d of those + 1 new layer of %.1f MB tar, %.1f MB gzip (generated in %.1fs)",
		registryName+"/"+benchkit.RepoName, len(img.Layers), float64(u)/1e6, float64(c)/1e6, float64(u)/float64(c), files, dirs,
		registryName+"/"+benchkit.RepoName, len(img.Layers)-1, float64(newLayer.USize)/1e6, float64(newLayer.Size)/1e6, took.Seconds())
}

// step is one measurement's work for one run.
type step func(ctx context.Context, run int) (sample, error)

// plan lists the measurements (table rows) and what each run of each does.
func plan(c *crirt, reg *benchkit.Registry, work string, img, img2 *benchkit.Image, keep bool) ([]*measurement, []step) {
	n := len(img.Layers)
	all, fresh := img.Layers, img2.Layers[n-1:]
	ref, ref2 := registryName+"/"+benchkit.RepoName+":"+img.Tag, registryName+"/"+benchkit.RepoName+":"+img2.Tag
	var ms []*measurement
	var steps []step
	add := func(name string, k kind, set string, ls []*benchkit.Layer, s step) {
		cb, ub := benchkit.LayerSizes(ls)
		ms = append(ms, &measurement{name: name, kind: k, set: set, cBytes: cb, uBytes: ub})
		steps = append(steps, s)
	}
	timed := func(f func(ctx context.Context, run int) (time.Duration, error)) step {
		return func(ctx context.Context, run int) (sample, error) {
			d, err := f(ctx, run)
			return sample{dur: d}, err
		}
	}
	urls, paths := reg.BlobURLs, benchkit.LayerPaths

	add("cri-rt PullImage, cold", kindPull, "all", all, func(ctx context.Context, _ int) (sample, error) {
		return c.coldPull(ctx, ref)
	})
	add(fmt.Sprintf("cri-rt PullImage, %d of %d layers present (new layer only)", n-1, n), kindPull, "new", fresh,
		func(ctx context.Context, _ int) (sample, error) { return c.sharedPull(ctx, ref, ref2) })
	add("curl, sequential", kindTransfer, "all", all, timed(func(ctx context.Context, _ int) (time.Duration, error) {
		return benchkit.TimeCurl(ctx, urls(all), false)
	}))
	add(fmt.Sprintf("curl, %d in parallel", n), kindTransfer, "all", all, timed(func(ctx context.Context, _ int) (time.Duration, error) {
		return benchkit.TimeCurl(ctx, urls(all), true)
	}))
	add("curl, new layer only", kindTransfer, "new", fresh, timed(func(ctx context.Context, _ int) (time.Duration, error) {
		return benchkit.TimeCurl(ctx, urls(fresh), false)
	}))
	add("gunzip, 1 goroutine", kindGunzip, "all", all, timed(func(context.Context, int) (time.Duration, error) {
		return benchkit.TimeGunzip(paths(all), false)
	}))
	add(fmt.Sprintf("gunzip, %d goroutines", n), kindGunzip, "all", all, timed(func(context.Context, int) (time.Duration, error) {
		return benchkit.TimeGunzip(paths(all), true)
	}))
	add("gunzip, new layer only", kindGunzip, "new", fresh, timed(func(context.Context, int) (time.Duration, error) {
		return benchkit.TimeGunzip(paths(fresh), false)
	}))
	add(fmt.Sprintf("gunzip+untar+write, %d goroutines", n), kindWrite, "all", all, timed(func(ctx context.Context, run int) (time.Duration, error) {
		return untarOnce(ctx, paths(all), filepath.Join(work, fmt.Sprintf("untar-%d", run)), keep)
	}))
	return ms, steps
}

// untarOnce times unpacking into dst, then removes dst (untimed).
func untarOnce(ctx context.Context, paths []string, dst string, keep bool) (time.Duration, error) {
	d, err := benchkit.TimeUntar(ctx, paths, dst)
	if !keep {
		err = errors.Join(err, os.RemoveAll(dst))
	}
	return d, err
}

// measure runs every step once per run, interleaved (run 1 of all, then
// run 2 of all, ...) so that a slow phase of the machine does not land on
// one measurement only. Dirty pages are written back before each step.
func measure(ctx context.Context, runs int, ms []*measurement, steps []step) error {
	for r := 1; r <= runs; r++ {
		for i, m := range ms {
			benchkit.SyncDisks()
			s, err := steps[i](ctx, r)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.samples = append(m.samples, s)
			progress(fmt.Sprintf("run %d/%d  %-55s %7.3fs", r, runs, m.name, s.dur.Seconds()))
		}
	}
	return nil
}

func methodNote(runs, layers int) string {
	return fmt.Sprintf("%d run(s) of each, interleaved; a fresh daemon and root per pull; data in the page cache; sync before each step; pull timed from the PullImage call to its reply; the floors read the same %d blobs from the same registry (curl) or the same gzip files (klauspost gzip, cri-rt's)",
		runs, layers)
}

// removeWork removes the work directory, or says where it was kept.
func removeWork(work string, keep bool) error {
	if keep {
		progress("kept " + work)
		return nil
	}
	if err := benchkit.UnmountBelow(work); err != nil {
		return err
	}
	return os.RemoveAll(work)
}

func progress(msg string) {
	fmt.Fprintf(os.Stderr, "pullbench: %s\n", msg)
}

// machineInfo describes the machine, naming the Go toolchain and platform.
func machineInfo() string {
	return benchkit.MachineInfo("CPUs", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
}

func registryVersion() string {
	out, err := exec.Command("docker-registry", "--version").Output()
	if err != nil {
		return "docker-registry"
	}
	return strings.TrimSpace(string(out))
}
