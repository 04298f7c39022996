package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

// results holds one runtime's (or the floor's) samples by metric:
// durations in seconds, memory in KiB, counts as they are.
type results map[string][]float64

func (r results) add(k string, v float64)          { r[k] = append(r[k], v) }
func (r results) addDur(k string, d time.Duration) { r.add(k, d.Seconds()) }
func (r results) fmtP50(k string) string           { return fmt.Sprintf("%.1f ms", percentile(r[k], 50)*1e3) }

// addMem records a memory sample under prefix (idle, pods).
func (r results) addMem(prefix string, s memSample) {
	r.add(prefix+".daemon.rss", float64(s.daemon.rss))
	r.add(prefix+".daemon.pss", float64(s.daemon.pss))
	r.add(prefix+".helpers.n", float64(s.nHelpers))
	r.add(prefix+".helpers.rss", float64(s.helpers.rss))
	r.add(prefix+".helpers.pss", float64(s.helpers.pss))
	r.add(prefix+".daemon.pssanon", float64(s.daemon.pssAnon))
	r.add(prefix+".daemon.pssfile", float64(s.daemon.pssFile))
	r.add(prefix+".helpers.pssanon", float64(s.helpers.pssAnon))
	r.add(prefix+".helpers.pssfile", float64(s.helpers.pssFile))
	r.add(prefix+".total.rss", float64(s.daemon.rss+s.helpers.rss))
	r.add(prefix+".total.pss", float64(s.totalPSS()))
}

// percentile is the p-th percentile: linear between the closest ranks
// (the median of an even count is the mean of the middle two).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// settle is how long a daemon is left alone before its memory is read:
// what a burst of calls allocated can be collected.
const settle = 3 * time.Second

// share is pass's part of n when n is spread over passes.
func share(n, pass, passes int) int {
	k := n / passes
	if pass < n%passes {
		k++
	}
	return k
}

// measureRuntime runs pass's share of the scenarios (all but the pulls)
// on one runtime alone: a daemon started here on the runtime's directory
// (its root, with the images, is kept from pass to pass) and stopped at
// the end, all pods removed through the CRI first. The first pass also
// pulls the small images, reads the idle memory and times ListContainers.
func measureRuntime(ctx context.Context, def *runtimeDef, e *env, opts options, pass int, res results) (err error) {
	in, startup, err := startInstance(ctx, def, e, filepath.Join(e.work, def.key))
	if err != nil {
		return err
	}
	defer func() {
		if serr := in.shutdown(pass == opts.passes-1); serr != nil {
			err = errors.Join(err, serr)
		}
		if err != nil {
			err = fmt.Errorf("%w\n%s log (%s):\n%s", err, def.name, in.proc.LogPath(), in.proc.LogTail())
		}
	}()
	res.addDur("startup", startup)
	if pass == 0 {
		for _, ref := range []string{e.imgs.pause, e.imgs.app} {
			if _, _, err := in.pull(ctx, ref); err != nil {
				return err
			}
		}
		if err := sleep(ctx, settle); err != nil {
			return err
		}
		idle, err := in.memSample()
		if err != nil {
			return err
		}
		res.addMem("idle", idle)
	}
	if err := lifecycle(ctx, in, opts.warmup, share(opts.iterations, pass, opts.passes), res); err != nil {
		return err
	}
	if n := share(opts.execs, pass, opts.passes); n > 0 {
		if err := execs(ctx, in, opts.warmup, n, res); err != nil {
			return err
		}
	}
	if err := concurrent(ctx, in, opts.concurrent, share(opts.rounds, pass, opts.passes), res); err != nil {
		return err
	}
	if pass == 0 {
		if err := listContainers(ctx, in, opts, res); err != nil {
			return err
		}
	}
	progress(fmt.Sprintf("%s, pass %d: RunPodSandbox p50 %s, CreateContainer+StartContainer p50 %s, %d pods at once %.2fs, PSS with them %.1f MiB",
		def.name, pass+1, res.fmtP50("runpod"), res.fmtP50("createstart"), opts.concurrent,
		percentile(res["conc"], 50), percentile(res["pods.total.pss"], 50)/1024))
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// lifecycle runs pods one at a time, each through its whole life: the
// per-call latencies and their sum, the full lifecycle.
func lifecycle(ctx context.Context, in *instance, warmup, iterations int, res results) error {
	for i := -warmup; i < iterations; i++ {
		p, d1, err := in.runPod(ctx, "life")
		if err != nil {
			return err
		}
		id, d2, err := in.createStart(ctx, p, "app")
		if err != nil {
			return err
		}
		d3, err := in.stopRemoveContainer(ctx, p, id)
		if err != nil {
			return err
		}
		d4, err := in.stopRemovePod(ctx, p)
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
	return nil
}

// execs times ExecSync of /bin/true in one running container.
func execs(ctx context.Context, in *instance, warmup, n int, res results) error {
	p, _, err := in.runPod(ctx, "exec")
	if err != nil {
		return err
	}
	id, _, err := in.createStart(ctx, p, "app")
	if err != nil {
		return errors.Join(err, in.teardown(ctx, p))
	}
	for i := -warmup; i < n; i++ {
		d, err := in.execSync(ctx, id)
		if err != nil {
			return errors.Join(err, in.teardown(ctx, p))
		}
		if i >= 0 {
			res.addDur("exec", d)
		}
	}
	return in.teardown(ctx, p)
}

// concurrent starts npods pods (sandbox + one container each)
// at once and times the wall clock until all run; then, after settle,
// reads the memory of the daemon and its shims or monitors with them
// running; then stops and removes them all at once, timed too.
func concurrent(ctx context.Context, in *instance, npods, rounds int, res results) error {
	for range rounds {
		pods := make([]*pod, npods)
		errs := make([]error, npods)
		cfgs := make([]*runtimeapi.PodSandboxConfig, npods)
		for i := range cfgs {
			cfg, err := in.podConfig(fmt.Sprintf("conc-%d", i))
			if err != nil {
				return err
			}
			cfgs[i] = cfg
		}
		var wg sync.WaitGroup
		start := time.Now()
		for i := range pods {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				defer cancel()
				pr, err := in.rt.RunPodSandbox(cctx, &runtimeapi.RunPodSandboxRequest{Config: cfgs[i]})
				if err != nil {
					errs[i] = fmt.Errorf("RunPodSandbox: %w", err)
					return
				}
				pods[i] = &pod{id: pr.PodSandboxId, cfg: cfgs[i]}
				_, _, errs[i] = in.createStart(ctx, pods[i], "app")
			})
		}
		wg.Wait()
		up := time.Since(start)
		if err := errors.Join(errs...); err != nil {
			return err
		}
		res.addDur("conc", up)
		if err := sleep(ctx, settle); err != nil {
			return err
		}
		m, err := in.memSample()
		if err != nil {
			return err
		}
		res.addMem("pods", m)
		start = time.Now()
		for i, p := range pods {
			wg.Go(func() { errs[i] = in.teardown(ctx, p) })
		}
		wg.Wait()
		res.addDur("concdown", time.Since(start))
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// listContainers runs opts.listPods pods of opts.containers/opts.listPods
// containers each (started by four callers at once, untimed), then times
// ListContainers with no filter, as kubelet's relist does.
func listContainers(ctx context.Context, in *instance, opts options, res results) (err error) {
	per := opts.containers / opts.listPods
	pods := make([]*pod, opts.listPods)
	defer func() {
		if err != nil {
			return // the daemon's shutdown removes what is left
		}
		for _, p := range pods {
			if p != nil {
				err = errors.Join(err, in.teardown(ctx, p))
			}
		}
	}()
	for i := range pods {
		p, _, err := in.runPod(ctx, fmt.Sprintf("list-%d", i))
		if err != nil {
			return err
		}
		pods[i] = p
	}
	type job struct{ p, c int }
	jobs := make(chan job)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for j := range jobs {
				p := pods[j.p]
				cfg := in.containerConfig(fmt.Sprintf("app-%d", j.c), p)
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				c, err := in.rt.CreateContainer(cctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
				if err == nil {
					mu.Lock()
					p.addContainer(c.ContainerId, cfg.Metadata.Name)
					mu.Unlock()
					_, err = in.rt.StartContainer(cctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId})
				}
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for pi := range pods {
		for c := range per {
			jobs <- job{pi, c}
		}
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := -opts.warmup; i < opts.lists; i++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		start := time.Now()
		r, err := in.rt.ListContainers(cctx, &runtimeapi.ListContainersRequest{})
		d := time.Since(start)
		cancel()
		if err != nil {
			return fmt.Errorf("ListContainers: %w", err)
		}
		if len(r.Containers) != per*len(pods) {
			return fmt.Errorf("ListContainers: %d containers, want %d", len(r.Containers), per*len(pods))
		}
		if i >= 0 {
			res.addDur("list", d)
		}
	}
	return nil
}

// pullRun is one run of the pull scenario on a fresh daemon and root: the
// big image cold, then the second one, which shares all layers but one.
// Dirty pages are written back before each pull, so that neither pays for
// the writes of the one before.
func pullRun(ctx context.Context, def *runtimeDef, e *env, run int, res results) (err error) {
	in, _, err := startInstance(ctx, def, e, filepath.Join(e.work, fmt.Sprintf("pull-%s-%d", def.key, run)))
	if err != nil {
		return err
	}
	defer func() {
		if serr := in.shutdown(true); serr != nil {
			err = errors.Join(err, serr)
		}
		if err != nil {
			err = fmt.Errorf("%w\n%s log:\n%s", err, def.name, in.proc.LogTail())
		}
	}()
	benchkit.SyncDisks()
	d, peak, err := in.pull(ctx, e.imgs.big)
	if err != nil {
		return err
	}
	res.addDur("pullcold", d)
	res.add("pullrss", float64(peak))
	benchkit.SyncDisks()
	d2, _, err := in.pull(ctx, e.imgs.big2)
	if err != nil {
		return err
	}
	res.addDur("pullshared", d2)
	progress(fmt.Sprintf("pull run %d, %s: cold %.2fs, shared %.2fs, peak RSS %.0f MiB", run, def.name, d.Seconds(), d2.Seconds(), float64(peak)/1024))
	benchkit.SyncDisks()
	return nil
}
