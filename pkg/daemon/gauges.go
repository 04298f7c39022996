package daemon

import (
	"context"

	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/image"
	"github.com/cri-rt/cri-rt/pkg/metrics"
	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
	"github.com/cri-rt/cri-rt/pkg/server"
)

// registerStateGauges exposes, computed at scrape time from the stores,
// the containers and sandboxes by state, the monitor processes alive, and
// the disk the image store uses.
func registerStateGauges(set *metrics.Set, pods *server.Options, images *image.Service) {
	set.Gauges("containers", "Containers by state.", "state", func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range []container.State{container.StateCreated, container.StateRunning, container.StateExited} {
			out[string(s)] = 0
		}
		for _, c := range pods.ContainerStore.List() {
			out[string(c.Status().State)]++
		}
		return out
	})
	set.Gauges("sandboxes", "Pod sandboxes by state.", "state", func() map[string]float64 {
		out := map[string]float64{string(sandbox.StateReady): 0, string(sandbox.StateNotReady): 0}
		for _, sb := range pods.SandboxStore.List() {
			out[string(sb.Status().State)]++
		}
		return out
	})
	set.Gauge("monitor_processes", "Container monitor processes running (one per running container; pause runs without).", func() float64 {
		n := 0
		for _, c := range pods.ContainerStore.List() {
			if monitor.Running(pods.Containers.MonitorDir(c.ID)) {
				n++
			}
		}
		return float64(n)
	})
	set.Gauge("image_store_bytes", "Bytes used by unpacked layers and stored blobs.", func() float64 {
		b, _, _ := images.Usage(context.Background())
		return float64(b)
	})
	set.Gauge("image_store_inodes", "Inodes used by unpacked layers and stored blobs.", func() float64 {
		_, i, _ := images.Usage(context.Background())
		return float64(i)
	})
}
