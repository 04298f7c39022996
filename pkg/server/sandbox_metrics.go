package server

import (
	"context"
	"path"
	"sync"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/oci"
	"github.com/cri-rt/cri-rt/pkg/podmetrics"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

// metricsStreamBatch is how many pods one StreamPodSandboxMetrics message
// carries.
const metricsStreamBatch = 100

// metricsWorkers bounds how many pods are collected at once: each walks
// the /proc/<pid>/fd of its processes.
const metricsWorkers = 8

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics
// returns: cAdvisor's, as kubelet's /metrics/cadvisor shows them.
func (s *Service) ListMetricDescriptors(ctx context.Context, r *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: podmetrics.Descriptors()}, nil
}

// ListPodSandboxMetrics returns the metrics of every ready pod and of its
// running containers.
func (s *Service) ListPodSandboxMetrics(ctx context.Context, r *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	pods, err := s.podSandboxMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: pods}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics as a stream of batches
// of at most metricsStreamBatch pods.
func (s *Service) StreamPodSandboxMetrics(r *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	pods, err := s.podSandboxMetrics(stream.Context())
	if err != nil {
		return err
	}
	for start := 0; start < len(pods); start += metricsStreamBatch {
		end := min(start+metricsStreamBatch, len(pods))
		if err := stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: pods[start:end]}); err != nil {
			return err
		}
	}
	return nil
}

// podSandboxMetrics collects the ready pods, oldest first, a few at a time.
func (s *Service) podSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	byPod := map[string][]*container.Container{}
	for _, ctr := range s.containerStore.List() {
		if ctr.Status().State == container.StateRunning {
			byPod[ctr.SandboxID] = append(byPod[ctr.SandboxID], ctr)
		}
	}
	var pods []*podmetrics.Pod
	for _, sb := range s.sandboxStore.List() {
		if sb.Status().State == sandbox.StateReady {
			pods = append(pods, s.metricsPod(sb, byPod[sb.ID]))
		}
	}
	col := &podmetrics.Collector{Layout: podmetrics.HostLayout(), Layers: writableLayers{s.containers}}
	out := make([]*runtimeapi.PodSandboxMetrics, len(pods))
	sem := make(chan struct{}, metricsWorkers)
	var wg sync.WaitGroup
	for i, p := range pods {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = col.Collect(p)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// metricsPod describes a ready sandbox and its running containers to the
// collector. The pod's cgroup is its cgroup parent's, as for
// PodSandboxStats; without one the pod is the sum of its pause and
// container cgroups.
func (s *Service) metricsPod(sb *sandbox.Sandbox, ctrs []*container.Container) *podmetrics.Pod {
	driver := s.config.CgroupDriver
	st := sb.Status()
	md := sb.Config.GetMetadata()
	p := &podmetrics.Pod{
		ID: sb.ID, Name: md.GetName(), Namespace: md.GetNamespace(),
		Pid: st.Pid, HostNetwork: sb.NetNSPath == "", CreatedAt: sb.CreatedAt,
	}
	if parent := sb.Config.GetLinux().GetCgroupParent(); parent != "" {
		if cp, err := oci.CgroupsPath(driver, parent, "x"); err == nil {
			p.CgroupRel = path.Dir(container.CgroupRel(cp, driver))
		}
	} else if cp, err := oci.CgroupsPath(driver, "", sb.ID); err == nil {
		p.SumCgroups = append(p.SumCgroups, container.CgroupRel(cp, driver))
	}
	for _, ctr := range ctrs {
		cst := ctr.Status()
		rel := container.CgroupRel(ctr.CgroupPath, driver)
		if p.CgroupRel == "" {
			p.SumCgroups = append(p.SumCgroups, rel)
		}
		image := ctr.Config.GetImage().GetUserSpecifiedImage()
		if image == "" {
			image = ctr.ImageName
		}
		c := podmetrics.Container{
			ID: ctr.ID, Name: ctr.Config.GetMetadata().GetName(), Image: image,
			CgroupRel: rel, Pid: cst.Pid, StartedAt: cst.StartedAt,
		}
		if res, err := container.CRIResources(cst.Resources); err == nil {
			c.Resources = res.GetLinux()
		}
		p.Containers = append(p.Containers, c)
	}
	return p
}

// writableLayers gives the collector the containers' writable layers.
type writableLayers struct{ c *container.Controller }

// WritableLayerUsage implements podmetrics.Layers.
func (w writableLayers) WritableLayerUsage(id string) (bytes, inodes uint64, err error) {
	return w.c.WritableLayerUsage(id)
}

// LayersRoot implements podmetrics.Layers.
func (w writableLayers) LayersRoot() string { return w.c.Snapshots.Root() }
