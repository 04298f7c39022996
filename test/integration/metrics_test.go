package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestMetricsAfterLifecycle scrapes /metrics after a pod and container
// lifecycle and checks every series docs/metrics.md documents that must
// have a value by then.
func TestMetricsAfterLifecycle(t *testing.T) {
	addr := freeLoopbackAddr(t)
	e := newPodEnv(t, 19, fmt.Sprintf("[metrics]\naddress = %q", addr))
	podID, podCfg, _ := e.pod(t, "metrics")
	st := e.runToExit(t, podID, podCfg, "oom", func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
	}, "sh", "-c", "x=$(yes | head -c 134217728)")
	if st.Reason != "OOMKilled" {
		t.Fatalf("reason %q", st.Reason)
	}
	id := e.createWith(t, podID, podCfg, "runner", nil, "sleep", "3600")
	e.start(t, id)
	e.waitState(t, id, runtimeapi.ContainerState_CONTAINER_RUNNING)

	text := scrape(t, addr)
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile("`(cri_rt_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1)
	// Counters of failures and events appear with their first occurrence.
	absentUntilUsed := map[string]bool{
		"cri_rt_cni_operation_errors_total": true, "cri_rt_oci_runtime_operation_errors_total": true,
		"cri_rt_container_events_dropped_total": false,
	}
	for _, m := range documented {
		name := m[1]
		if absentUntilUsed[name] {
			continue
		}
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("documented series %s not served", name)
		}
	}
	for series, check := range map[string]func(float64) bool{
		`cri_rt_sandboxes{state="Ready"}`:    func(v float64) bool { return v == 1 },
		`cri_rt_containers{state="Running"}`: func(v float64) bool { return v == 1 },
		`cri_rt_containers{state="Exited"}`:  func(v float64) bool { return v == 1 },
		`cri_rt_monitor_processes`:           func(v float64) bool { return v == 1 }, // the running container's; pause has none
		`cri_rt_oci_runtime_operation_duration_seconds_count{operation="create",runtime_handler="runc"}`: func(v float64) bool { return v == 1 }, // pause
		`cri_rt_container_oom_kills_total`:                                                              func(v float64) bool { return v == 1 },
		`cri_rt_image_pulls_total{outcome="success"}`:                                                   func(v float64) bool { return v >= 2 },
		`cri_rt_image_store_bytes`:                                                                      func(v float64) bool { return v > 1<<20 },
		`cri_rt_sandbox_run_stage_duration_seconds_count{stage="cni"}`:                                  func(v float64) bool { return v == 1 },
		`cri_rt_sandbox_run_stage_duration_seconds_count{stage="runtime_start"}`:                        func(v float64) bool { return v == 1 },
		`cri_rt_cni_operation_duration_seconds_count{operation="add"}`:                                  func(v float64) bool { return v == 1 },
		`cri_rt_oci_runtime_operation_duration_seconds_count{operation="start",runtime_handler="runc"}`: func(v float64) bool { return v >= 3 },
		`cri_rt_container_operation_duration_seconds_count{operation="create",runtime_handler="runc"}`:  func(v float64) bool { return v == 2 },
		`cri_rt_grpc_requests_total{code="OK",rpc="RunPodSandbox"}`:                                     func(v float64) bool { return v == 1 },
	} {
		v, ok := value(text, series)
		if !ok || !check(v) {
			t.Errorf("%s = %v (present %v)", series, v, ok)
		}
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return "\n" + string(b)
}

func value(text, series string) (float64, bool) {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, series)), 64)
			return v, err == nil
		}
	}
	return 0, false
}
