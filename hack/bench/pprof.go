package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// pprofSummary is what go tool pprof says of the daemon's CPU profile over
// a window of pod lifecycles, and of its heap after them.
type pprofSummary struct {
	window     time.Duration
	lifecycles int
	cpu        string   // "Total samples = ..." as pprof prints it
	cpuTop     []string // "function flat%" of the top functions
	cpuOurs    []string // "function cum%" of cri-rt's own functions
	heap       string   // total in-use heap
	heapTop    []string
}

// profileWindow fetches a CPU profile from the daemon's debug socket while
// running pod lifecycles one after another, then its heap profile, and
// summarizes both with go tool pprof. The profiles are kept in dir.
func profileWindow(ctx context.Context, in *instance, sock, dir string, window time.Duration) (*pprofSummary, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	fetch := func(path, file string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://debug"+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("%s: %s: %s", path, resp.Status, b)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, resp.Body)
		return errors.Join(err, f.Close())
	}
	cpuFile, heapFile := dir+"/cpu.pprof", dir+"/heap.pprof"
	done := make(chan error, 1)
	go func() { done <- fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(window.Seconds())), cpuFile) }()
	s := &pprofSummary{window: window}
	// Lifecycles back to back while the profile runs; one that ends after
	// the window is not counted.
	for end := time.Now().Add(window); ; {
		if err := lifecycle(ctx, in, 0, 1, results{}); err != nil {
			return nil, err
		}
		if time.Now().After(end) {
			break
		}
		s.lifecycles++
	}
	if err := <-done; err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := fetch("/debug/pprof/heap", heapFile); err != nil {
		return nil, fmt.Errorf("heap profile: %w", err)
	}
	var err error
	if s.cpu, s.cpuTop, err = pprofTop(ctx, cpuFile, 8); err != nil {
		return nil, err
	}
	_, cum, err := pprofTop(ctx, cpuFile, 200, "-cum")
	if err != nil {
		return nil, err
	}
	for _, l := range cum {
		if strings.HasPrefix(l, "github.com/cri-rt/cri-rt/") && len(s.cpuOurs) < 8 {
			s.cpuOurs = append(s.cpuOurs, strings.TrimPrefix(l, "github.com/cri-rt/cri-rt/"))
		}
	}
	if s.heap, s.heapTop, err = pprofTop(ctx, heapFile, 8, "-sample_index=inuse_space"); err != nil {
		return nil, err
	}
	return s, nil
}

// pprofTop runs go tool pprof -top and returns its total line and the top
// n functions as "name flat%" (with -cum: "name cum%").
func pprofTop(ctx context.Context, file string, n int, args ...string) (string, []string, error) {
	out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}, args...), file)...).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("go tool pprof %s: %v: %s", file, err, out)
	}
	var total string
	var top []string
	inTable := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case strings.Contains(l, "Total samples ="):
			total = strings.TrimSpace(l[strings.Index(l, "Total samples ="):])
		case strings.HasPrefix(strings.TrimSpace(l), "Showing nodes accounting for") && total == "":
			// Heap profiles have no "Total samples" line: the total
			// is at the end of this one ("... of 5.1MB total").
			if i := strings.Index(l, " of "); i > 0 {
				total = strings.TrimSpace(strings.TrimSuffix(l[i+4:], "total")) + " in use"
			}
		case len(f) >= 2 && f[0] == "flat" && f[1] == "flat%":
			inTable = true
		case inTable && len(f) >= 6:
			pct := f[1]
			if slices.Contains(args, "-cum") {
				pct = f[4]
			}
			top = append(top, fmt.Sprintf("%s %s", strings.Join(f[5:], " "), pct))
		}
	}
	return total, top, nil
}

// lines formats the summary for the report.
func (s *pprofSummary) lines() []string {
	if s == nil {
		return nil
	}
	perLifecycle := ""
	if f := strings.Fields(strings.TrimPrefix(s.cpu, "Total samples =")); len(f) > 0 && s.lifecycles > 0 {
		if d, err := time.ParseDuration(f[0]); err == nil {
			perLifecycle = fmt.Sprintf(", %.1f ms of CPU per pod lifecycle", float64(d.Microseconds())/1e3/float64(s.lifecycles))
		}
	}
	return []string{
		fmt.Sprintf("CPU profile of the daemon (go tool pprof -top) over %.0f s of back-to-back pod lifecycles (%d): %s%s; the rest of the wall time the daemon waits for runc, the monitors and the CNI plugins. Top functions (flat): %s. cri-rt's own functions (cumulative): %s",
			s.window.Seconds(), s.lifecycles, s.cpu, perLifecycle, strings.Join(s.cpuTop, ", "), strings.Join(s.cpuOurs, ", ")),
		fmt.Sprintf("Heap profile of the daemon after them (inuse_space): %s. Top: %s", s.heap, strings.Join(s.heapTop, ", ")),
	}
}
