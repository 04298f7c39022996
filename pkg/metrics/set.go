package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Set holds the runtime's own series (the per-RPC ones live in
// pkg/instrument). Every method is safe on a nil *Set, so components can
// run without metrics in tests.
type Set struct {
	sandboxStage    *prometheus.HistogramVec
	containerOp     *prometheus.HistogramVec
	cniOp           *prometheus.HistogramVec
	cniErrors       *prometheus.CounterVec
	ociOp           *prometheus.HistogramVec
	ociErrors       *prometheus.CounterVec
	pulls           *prometheus.CounterVec
	pullBytes       prometheus.Counter
	pullThroughput  prometheus.Histogram
	pullsInProgress prometheus.Gauge
	layerDedup      prometheus.Counter
	oomKills        prometheus.Counter
	recovery        prometheus.Gauge
	eventsDropped   prometheus.Counter
	reg             prometheus.Registerer
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// NewSet registers the runtime's series on reg.
func NewSet(reg prometheus.Registerer) *Set {
	s := &Set{
		reg: reg,
		sandboxStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "sandbox_run_stage_duration_seconds",
			Help: "Time RunPodSandbox spends in each stage: image, netns, cni, rootfs, runtime_start.", Buckets: latencyBuckets}, []string{"stage"}),
		containerOp: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "container_operation_duration_seconds",
			Help: "Latency of container create, start, stop and remove, by runtime handler.", Buckets: latencyBuckets}, []string{"operation", "runtime_handler"}),
		cniOp: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "cni_operation_duration_seconds",
			Help: "Latency of CNI operations (add, del).", Buckets: latencyBuckets}, []string{"operation"}),
		cniErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "cni_operation_errors_total",
			Help: "Failed CNI operations."}, []string{"operation"}),
		ociOp: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "oci_runtime_operation_duration_seconds",
			Help: "Latency of OCI runtime invocations (create, start, kill, delete, update, exec), by runtime handler.", Buckets: latencyBuckets}, []string{"operation", "runtime_handler"}),
		ociErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "oci_runtime_operation_errors_total",
			Help: "Failed OCI runtime invocations."}, []string{"operation", "runtime_handler"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "image_pulls_total",
			Help: "Image pulls by outcome (success, failure)."}, []string{"outcome"}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "image_pull_bytes_total",
			Help: "Bytes received from registries by image pulls."}),
		pullThroughput: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "image_pull_throughput_bytes_per_second",
			Help:    "Throughput of successful image pulls (bytes received / pull time).",
			Buckets: prometheus.ExponentialBuckets(1<<20, 2, 12)}),
		pullsInProgress: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "image_pulls_in_progress",
			Help: "Image pulls running now (concurrent pulls of one image count once)."}),
		layerDedup: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "image_layer_dedup_total",
			Help: "Layers a pull did not fetch because they were already unpacked."}),
		oomKills: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "container_oom_kills_total",
			Help: "Containers whose process was killed by the kernel OOM killer."}),
		recovery: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "restart_recovery_duration_seconds",
			Help: "How long the last start took to reconcile images, sandboxes and containers."}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "container_events_dropped_total",
			Help: "Container events dropped because a GetContainerEvents subscriber was too slow."}),
	}
	reg.MustRegister(s.sandboxStage, s.containerOp, s.cniOp, s.cniErrors, s.ociOp, s.ociErrors, s.pulls, s.pullBytes,
		s.pullThroughput, s.pullsInProgress, s.layerDedup, s.oomKills, s.recovery, s.eventsDropped)
	return s
}

// SandboxStage records one stage of RunPodSandbox.
func (s *Set) SandboxStage(stage string, d time.Duration) {
	if s != nil {
		s.sandboxStage.WithLabelValues(stage).Observe(d.Seconds())
	}
}

// ContainerOp records a container operation.
func (s *Set) ContainerOp(op, handler string, d time.Duration) {
	if s != nil {
		s.containerOp.WithLabelValues(op, handler).Observe(d.Seconds())
	}
}

// CNIOp records a CNI operation and its failure.
func (s *Set) CNIOp(op string, d time.Duration, err error) {
	if s == nil {
		return
	}
	s.cniOp.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		s.cniErrors.WithLabelValues(op).Inc()
	}
}

// OCIOp records an OCI runtime invocation and its failure.
func (s *Set) OCIOp(op, handler string, d time.Duration, err error) {
	if s == nil {
		return
	}
	s.ociOp.WithLabelValues(op, handler).Observe(d.Seconds())
	if err != nil {
		s.ociErrors.WithLabelValues(op, handler).Inc()
	}
}

// PullStarted implements image.PullObserver.
func (s *Set) PullStarted() {
	if s != nil {
		s.pullsInProgress.Inc()
	}
}

// PullFinished implements image.PullObserver.
func (s *Set) PullFinished(err error, bytes int64, seconds float64) {
	if s == nil {
		return
	}
	s.pullsInProgress.Dec()
	s.pullBytes.Add(float64(bytes))
	if err != nil {
		s.pulls.WithLabelValues("failure").Inc()
		return
	}
	s.pulls.WithLabelValues("success").Inc()
	if seconds > 0 && bytes > 0 {
		s.pullThroughput.Observe(float64(bytes) / seconds)
	}
}

// LayerDeduplicated implements image.PullObserver.
func (s *Set) LayerDeduplicated() {
	if s != nil {
		s.layerDedup.Inc()
	}
}

// OOMKill counts a container killed by the OOM killer.
func (s *Set) OOMKill() {
	if s != nil {
		s.oomKills.Inc()
	}
}

// Recovered records how long start-up reconciliation took.
func (s *Set) Recovered(d time.Duration) {
	if s != nil {
		s.recovery.Set(d.Seconds())
	}
}

// EventDropped counts a container event a slow subscriber missed.
func (s *Set) EventDropped() {
	if s != nil {
		s.eventsDropped.Inc()
	}
}

// Gauges registers gauges computed at scrape time: fn returns label value
// -> value for the label name, e.g. containers by state.
func (s *Set) Gauges(name, help, label string, fn func() map[string]float64) {
	if s == nil {
		return
	}
	s.reg.MustRegister(&funcCollector{desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, []string{label}, nil), fn: fn})
}

// Gauge registers a single gauge computed at scrape time.
func (s *Set) Gauge(name, help string, fn func() float64) {
	if s == nil {
		return
	}
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

type funcCollector struct {
	desc *prometheus.Desc
	fn   func() map[string]float64
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	for l, v := range c.fn() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, l)
	}
}
