package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
)

// cri-rt's wall time is mostly spent waiting for runc, its monitors and the
// CNI plugins, which a CPU profile of the daemon does not show. Its
// Prometheus metrics time every stage of RunPodSandbox and every container,
// OCI runtime and CNI operation: read after a series of pod lifecycles on a
// daemon of its own (metrics and pprof on, which the measured daemons do
// not have), they say where the time goes; a CPU and a heap profile of that
// daemon (its [debug] address) say what it spends itself.

// histogram is the sum and count of one labelled series.
type histogram struct{ sum, count float64 }

func (h histogram) meanMS() float64 { return h.sum / h.count * 1e3 }

// crirtProfile maps metric name → label value → histogram.
type crirtProfile struct {
	lifecycles int
	series     map[string]map[string]histogram
	pprof      *pprofSummary
}

// profileCrirt runs n lifecycles and n ExecSync calls on a cri-rt with
// its metrics endpoint on and reads the histograms.
func profileCrirt(ctx context.Context, def *runtimeDef, e *env, warmup, n int) (p *crirtProfile, err error) {
	addr, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.work, "profile-"+def.key)
	sock := filepath.Join(dir, "debug.sock")
	in, _, err := startInstance(ctx, def, e, dir, fmt.Sprintf("[metrics]\n  address = %q\n[debug]\n  address = %q\n", addr, sock))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, in.shutdown(true)) }()
	for _, ref := range []string{e.imgs.pause, e.imgs.app} {
		if _, _, err := in.pull(ctx, ref); err != nil {
			return nil, err
		}
	}
	// The warm-up (and the pulls) are in the histograms too; they are
	// read before and after, and the difference kept.
	if err := lifecycle(ctx, in, 0, warmup, results{}); err != nil {
		return nil, err
	}
	before, err := scrape(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := lifecycle(ctx, in, 0, n, results{}); err != nil {
		return nil, err
	}
	mid, err := scrape(ctx, addr)
	if err != nil {
		return nil, err
	}
	// ExecSync (n calls, on a pod of its own) in a window of its own, so
	// that the lifecycle figures are per lifecycle.
	if err := execs(ctx, in, 0, n, results{}); err != nil {
		return nil, err
	}
	after, err := scrape(ctx, addr)
	if err != nil {
		return nil, err
	}
	p = &crirtProfile{lifecycles: n, series: map[string]map[string]histogram{}}
	p.addDiff(mid, before, nil)
	p.addDiff(after, mid, map[string]bool{"ExecSync": true, "/runtime.v1.RuntimeService/ExecSync": true, "exec": true})
	if p.pprof, err = profileWindow(ctx, in, sock, dir, 5*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// addDiff adds the series of b - a (those with calls), only the labels in
// only if it is set.
func (p *crirtProfile) addDiff(b, a map[string]map[string]histogram, only map[string]bool) {
	for name, byLabel := range b {
		for l, h := range byLabel {
			if only != nil && !only[l] {
				continue
			}
			o := a[name][l]
			if d := (histogram{h.sum - o.sum, h.count - o.count}); d.count > 0 {
				if p.series[name] == nil {
					p.series[name] = map[string]histogram{}
				}
				p.series[name][l] = d
			}
		}
	}
}

// scrape reads the _sum and _count series of every histogram, keyed by
// the metric name and its first label's value.
func scrape(ctx context.Context, addr string) (map[string]map[string]histogram, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("/metrics: %s: %s", resp.Status, b)
	}
	out := map[string]map[string]histogram{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, labels, _ := strings.Cut(series, "{")
		var isSum bool
		switch {
		case strings.HasSuffix(name, "_sum"):
			name, isSum = strings.TrimSuffix(name, "_sum"), true
		case strings.HasSuffix(name, "_count"):
			name = strings.TrimSuffix(name, "_count")
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		label := ""
		if _, rest, ok := strings.Cut(labels, `="`); ok {
			label, _, _ = strings.Cut(rest, `"`)
		}
		if out[name] == nil {
			out[name] = map[string]histogram{}
		}
		h := out[name][label]
		if isSum {
			h.sum = v
		} else {
			h.count = v
		}
		out[name][label] = h
	}
	return out, sc.Err()
}

// lines formats the profile: mean milliseconds per call, and calls per
// lifecycle (per ExecSync for exec) where that is not one.
func (p *crirtProfile) lines() []string {
	if p == nil {
		return nil
	}
	type group struct {
		title, metric string
		order         []string
	}
	groups := []group{
		{"gRPC server time per call", "cri_rt_grpc_request_duration_seconds",
			[]string{"RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox", "ExecSync"}},
		{"RunPodSandbox stages", "cri_rt_sandbox_run_stage_duration_seconds", []string{"image", "netns", "cni", "rootfs", "runtime_start"}},
		{"container operations", "cri_rt_container_operation_duration_seconds", []string{"create", "start", "stop", "remove"}},
		{"runc invocations by the daemon (create: pause only; a container's monitor runs its create)", "cri_rt_oci_runtime_operation_duration_seconds", []string{"create", "start", "kill", "delete", "exec"}},
		{"CNI", "cri_rt_cni_operation_duration_seconds", []string{"add", "del"}},
	}
	var out []string
	for _, g := range groups {
		byLabel := map[string]histogram{}
		for l, h := range p.series[g.metric] {
			byLabel[l[strings.LastIndex(l, "/")+1:]] = h
		}
		var labels []string
		for l := range byLabel {
			labels = append(labels, l)
		}
		slices.SortFunc(labels, func(a, b string) int {
			ia, ib := slices.Index(g.order, a), slices.Index(g.order, b)
			if ia < 0 {
				ia = len(g.order)
			}
			if ib < 0 {
				ib = len(g.order)
			}
			if ia != ib {
				return ia - ib
			}
			return strings.Compare(a, b)
		})
		var parts []string
		for _, l := range labels {
			h := byLabel[l]
			if g.metric == "cri_rt_grpc_request_duration_seconds" && !slices.Contains(g.order, l) {
				continue
			}
			part := fmt.Sprintf("%s %.1f", l, h.meanMS())
			if per := h.count / float64(p.lifecycles); per < 0.95 || per > 1.05 {
				part += fmt.Sprintf(" (×%.1f)", per)
			}
			parts = append(parts, part)
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("%s (mean ms): %s", g.title, strings.Join(parts, ", ")))
		}
	}
	return append(out, p.pprof.lines()...)
}
