// Package instrument is the one boundary every CRI call crosses: it gives
// the call a request id and a logger, logs it with its duration, translates
// internal errors (errdefs sentinels) to gRPC codes, and records per-RPC
// Prometheus metrics. Handlers return plain wrapped errors and never build
// gRPC statuses themselves.
package instrument

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path"
	"time"

	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/metrics"
)

// Metrics are the per-RPC series.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
}

// NewMetrics registers the per-RPC series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "grpc", Name: "requests_total",
			Help: "CRI requests handled, by RPC and gRPC status code.",
		}, []string{"rpc", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "grpc", Name: "request_duration_seconds",
			Help:    "Latency of CRI requests, by RPC.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"rpc"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "grpc", Name: "requests_in_flight",
			Help: "CRI requests being handled now, by RPC.",
		}, []string{"rpc"}),
	}
	reg.MustRegister(m.requests, m.latency, m.inflight)
	return m
}

// readOnly lists the RPCs that change nothing; kubelet polls them, so they
// are logged only at higher verbosity.
var readOnly = map[string]bool{
	"Version": true, "Status": true, "RuntimeConfig": true,
	"PodSandboxStatus": true, "ListPodSandbox": true, "StreamPodSandboxes": true,
	"ContainerStatus": true, "ListContainers": true, "StreamContainers": true,
	"ContainerStats": true, "ListContainerStats": true, "StreamContainerStats": true,
	"PodSandboxStats": true, "ListPodSandboxStats": true, "StreamPodSandboxStats": true,
	"ListMetricDescriptors": true, "ListPodSandboxMetrics": true, "StreamPodSandboxMetrics": true,
	"ImageStatus": true, "ListImages": true, "StreamImages": true, "ImageFsInfo": true,
	"GetContainerEvents": true,
}

// verbosity of the per-call log lines.
const (
	mutatingV = 0
	readOnlyV = 5
)

func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// begin prepares the context of one call and returns a function that
// finishes it: it logs, records metrics and translates the error.
func (m *Metrics) begin(ctx context.Context, fullMethod string) (context.Context, func(error) error) {
	rpc := path.Base(fullMethod)
	v := mutatingV
	if readOnly[rpc] {
		v = readOnlyV
	}
	logger := klog.FromContext(ctx).WithValues("rpc", rpc, "rid", newRequestID())
	ctx = klog.NewContext(ctx, logger)
	start := time.Now()
	m.inflight.WithLabelValues(rpc).Inc()
	return ctx, func(err error) error {
		m.inflight.WithLabelValues(rpc).Dec()
		err = errgrpc.ToGRPC(err)
		code := status.Code(err)
		elapsed := time.Since(start)
		m.requests.WithLabelValues(rpc, code.String()).Inc()
		m.latency.WithLabelValues(rpc).Observe(elapsed.Seconds())
		if err != nil {
			logger.V(v).Info("RPC failed", "code", code.String(), "err", status.Convert(err).Message(), "duration", elapsed)
		} else {
			logger.V(v).Info("RPC done", "duration", elapsed)
		}
		return err
	}
}

// UnaryServerInterceptor instruments unary RPCs.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, done := m.begin(ctx, info.FullMethod)
		resp, err := handler(ctx, req)
		return resp, done(err)
	}
}

// StreamServerInterceptor instruments server-streaming RPCs.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, done := m.begin(ss.Context(), info.FullMethod)
		return done(handler(srv, &contextStream{ServerStream: ss, ctx: ctx}))
	}
}

// contextStream carries the instrumented context into a stream handler.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
