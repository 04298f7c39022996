package integration

import (
	"io"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podMetrics lists the pod sandbox metrics and returns those of podID, with
// every metric checked against its descriptor's label keys.
func (e *podEnv) podMetrics(t *testing.T, podID string) *runtimeapi.PodSandboxMetrics {
	t.Helper()
	descs, err := e.rs.ListMetricDescriptors(ctx(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range descs.Descriptors {
		keys[d.Name] = d.LabelKeys
	}
	resp, err := e.rs.ListPodSandboxMetrics(ctx(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var found *runtimeapi.PodSandboxMetrics
	for _, p := range resp.PodMetrics {
		if p.PodSandboxId == podID {
			found = p
		}
		all := slices.Clone(p.Metrics)
		for _, c := range p.ContainerMetrics {
			all = append(all, c.Metrics...)
		}
		for _, m := range all {
			if k, ok := keys[m.Name]; !ok || len(k) != len(m.LabelValues) {
				t.Fatalf("%s: label values %q, descriptor keys %q (described: %v)", m.Name, m.LabelValues, k, ok)
			}
		}
	}
	if found == nil {
		t.Fatalf("no metrics for pod %s", podID)
	}
	return found
}

// metric returns the value and labels of the first metric named name of
// container ctrID ("" for the pod's own) whose label values end with
// suffix.
func metric(p *runtimeapi.PodSandboxMetrics, ctrID, name string, suffix ...string) (uint64, []string, bool) {
	ms := p.Metrics
	if ctrID != "" {
		ms = nil
		for _, c := range p.ContainerMetrics {
			if c.ContainerId == ctrID {
				ms = c.Metrics
			}
		}
	}
	for _, m := range ms {
		if m.Name == name && len(m.LabelValues) >= len(suffix) && slices.Equal(m.LabelValues[len(m.LabelValues)-len(suffix):], suffix) {
			return m.Value.GetValue(), m.LabelValues, true
		}
	}
	return 0, nil, false
}

func mustMetric(t *testing.T, p *runtimeapi.PodSandboxMetrics, ctrID, name string, suffix ...string) uint64 {
	t.Helper()
	v, _, ok := metric(p, ctrID, name, suffix...)
	if !ok {
		t.Fatalf("no %s%v for %q", name, suffix, ctrID)
	}
	return v
}

// TestPodSandboxMetrics runs a pod with a CPU burner and a container that
// allocates memory on request, and checks that ListPodSandboxMetrics sees
// CPU time grow and memory move, with cAdvisor's labels.
func TestPodSandboxMetrics(t *testing.T) {
	e := newPodEnv(t, 58)
	podID, podCfg, _ := e.pod(t, "metrics")
	burn := e.createWith(t, podID, podCfg, "burn", nil, "sh", "-c", "while true; do :; done")
	e.start(t, burn)
	const limit = 256 << 20
	mem := e.createWith(t, podID, podCfg, "mem", func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: limit, CpuPeriod: 100000, CpuQuota: 50000}
	}, "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.1; done; x=$(yes | head -c 50000000); touch /tmp/done; sleep 600")
	e.start(t, mem)
	e.waitState(t, burn, runtimeapi.ContainerState_CONTAINER_RUNNING)
	e.waitState(t, mem, runtimeapi.ContainerState_CONTAINER_RUNNING)

	first := e.podMetrics(t, podID)
	cpu0 := mustMetric(t, first, burn, "container_cpu_usage_seconds_total")
	mem0 := mustMetric(t, first, mem, "container_memory_usage_bytes")

	// Labels as kubelet's /metrics/cadvisor has them.
	_, labels, _ := metric(first, burn, "container_cpu_usage_seconds_total")
	if labels[0] != "burn" || labels[2] != e.busybox || labels[3] != burn || labels[4] != "test" || labels[5] != "metrics" {
		t.Errorf("container labels %q", labels)
	}
	_, labels, _ = metric(first, "", "container_last_seen")
	if labels[0] != "" || labels[3] != podID || labels[5] != "metrics" {
		t.Errorf("pod labels %q", labels)
	}
	// The pod's network is its namespace's eth0.
	mustMetric(t, first, "", "container_network_receive_bytes_total", "eth0")
	if _, _, ok := metric(first, "", "container_network_receive_bytes_total", "lo"); ok {
		t.Error("loopback reported")
	}
	// Limits come from the container's resources.
	for name, want := range map[string]uint64{
		"container_spec_memory_limit_bytes": limit, "container_spec_cpu_period": 100000, "container_spec_cpu_quota": 50000,
	} {
		if v := mustMetric(t, first, mem, name); v != want {
			t.Errorf("%s = %d, want %d", name, v, want)
		}
	}
	if v := mustMetric(t, first, burn, "container_start_time_seconds"); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("start time %d", v)
	}
	for _, name := range []string{"container_processes", "container_threads", "container_file_descriptors"} {
		if v := mustMetric(t, first, burn, name); v == 0 {
			t.Errorf("%s = 0 for a running shell", name)
		}
	}
	mustMetric(t, first, burn, "container_fs_usage_bytes")
	mustMetric(t, first, burn, "container_fs_limit_bytes")

	// The burner's CPU time grows (whole seconds: the CRI carries integers).
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(time.Second)
		p := e.podMetrics(t, podID)
		cpu := mustMetric(t, p, burn, "container_cpu_usage_seconds_total")
		if cpu > cpu0 {
			t.Logf("burner CPU time %d s -> %d s", cpu0, cpu)
			// The pod is read just before its containers: allow a tick.
			if pod := mustMetric(t, p, "", "container_cpu_usage_seconds_total"); pod+1 < cpu {
				t.Errorf("pod CPU %d s < its container's %d s", pod, cpu)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time of a busy loop stayed at %d s", cpu)
		}
	}

	// Memory moves once the container holds 50 MB.
	if _, err := e.rs.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: mem, Cmd: []string{"touch", "/tmp/go"}, Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		p := e.podMetrics(t, podID)
		usage := mustMetric(t, p, mem, "container_memory_usage_bytes")
		ws := mustMetric(t, p, mem, "container_memory_working_set_bytes")
		if usage >= mem0+40e6 && ws >= 40e6 {
			t.Logf("memory usage %d -> %d bytes (working set %d)", mem0, usage, ws)
			if peak := mustMetric(t, p, mem, "container_memory_max_usage_bytes"); peak < usage {
				t.Errorf("max usage %d < usage %d", peak, usage)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory usage %d (working set %d), was %d before allocating 50 MB", usage, ws, mem0)
		}
	}

	// The stream holds the same pods.
	stream, err := e.rs.StreamPodSandboxMetrics(ctx(t), &runtimeapi.StreamPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []string
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.PodSandboxMetrics {
			streamed = append(streamed, p.PodSandboxId)
		}
	}
	if !slices.Equal(streamed, []string{podID}) {
		t.Errorf("streamed pods %v, want [%s]", streamed, podID)
	}

	// A stopped pod is not reported.
	if _, err := e.rs.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.rs.ListPodSandboxMetrics(ctx(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil || len(resp.PodMetrics) != 0 {
		t.Fatalf("after stop: %d pods, %v", len(resp.GetPodMetrics()), err)
	}
}
