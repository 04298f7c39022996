package nri

import (
	"context"
	"fmt"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	rtgen "github.com/opencontainers/runtime-tools/generate"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/container"
	"github.com/cri-rt/cri-rt/pkg/oci"
	"github.com/cri-rt/cri-rt/pkg/sandbox"
)

var (
	_ sandbox.NRIHooks   = (*NRI)(nil)
	_ container.NRIHooks = (*NRI)(nil)
)

// RunPodSandbox tells plugins of a new pod; a plugin's error is returned
// and fails RunPodSandbox.
func (n *NRI) RunPodSandbox(ctx context.Context, sb *sandbox.Sandbox) error {
	return n.a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: n.pod(sb)})
}

// StopPodSandbox tells plugins the pod has stopped.
func (n *NRI) StopPodSandbox(ctx context.Context, sb *sandbox.Sandbox) {
	if err := n.a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: n.pod(sb)}); err != nil {
		klog.FromContext(ctx).Error(err, "NRI StopPodSandbox", "sandbox", sb.ID)
	}
}

// RemovePodSandbox tells plugins the pod is gone.
func (n *NRI) RemovePodSandbox(ctx context.Context, sb *sandbox.Sandbox) {
	if err := n.a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: n.pod(sb)}); err != nil {
		klog.FromContext(ctx).Error(err, "NRI RemovePodSandbox", "sandbox", sb.ID)
	}
}

// podOf describes a container's pod. One that is gone already is known by
// its ID alone.
func (n *NRI) podOf(ctr *container.Container) *api.PodSandbox {
	if n.st.SandboxStore != nil {
		if sb, err := n.st.SandboxStore.Get(ctr.SandboxID); err == nil {
			return n.pod(sb)
		}
	}
	return &api.PodSandbox{Id: ctr.SandboxID}
}

// CreateContainer asks plugins about a new container and applies their
// adjustments to spec, in place. A plugin's error, or adjustments that
// cannot be applied or make the spec invalid, are returned and fail
// CreateContainer. The plugins' updates to other containers are applied
// and their evictions started; failures there are only logged, as the new
// container does not depend on them.
func (n *NRI) CreateContainer(ctx context.Context, ctr *container.Container, spec *specs.Spec) error {
	resp, err := n.a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: n.podOf(ctr), Container: n.container(ctr, spec)})
	if err != nil {
		return err
	}
	if err := adjust(spec, resp.GetAdjust()); err != nil {
		return err
	}
	n.evict(ctx, resp.GetEvict())
	n.applyUpdates(ctx, resp.GetUpdate())
	return nil
}

// adjust applies plugins' adjustments to spec with NRI's own generator,
// the one containerd and CRI-O use, over runtime-tools' (the generator
// pkg/oci builds specs with), and checks the result as pkg/oci checks
// what it builds.
func adjust(spec *specs.Spec, adj *api.ContainerAdjustment) error {
	if adj == nil {
		return nil
	}
	rg := rtgen.NewFromSpec(spec)
	g := nrigen.SpecGenerator(&rg,
		// cri-rt has no CDI registry: a plugin that asks for CDI devices
		// must hear that they are not there rather than have the container
		// start without them. Block I/O and RDT classes, which cri-rt has
		// no configuration for, are ignored, as containerd does when those
		// are not configured.
		nrigen.WithCDIDeviceInjector(func(_ *specs.Spec, devices []string) error {
			return fmt.Errorf("CDI devices %v: cri-rt does not support CDI", devices)
		}),
	)
	if err := g.Adjust(adj); err != nil {
		return fmt.Errorf("applying NRI adjustments: %w", err)
	}
	if err := oci.Validate(spec); err != nil {
		return fmt.Errorf("spec after NRI adjustments: %w", err)
	}
	return nil
}

// PostCreateContainer tells plugins the container is created.
func (n *NRI) PostCreateContainer(ctx context.Context, ctr *container.Container) {
	req := &api.PostCreateContainerRequest{Pod: n.podOf(ctr), Container: n.container(ctr, nil)}
	if err := n.a.PostCreateContainer(ctx, req); err != nil {
		klog.FromContext(ctx).Error(err, "NRI PostCreateContainer", "container", ctr.ID)
	}
}

// StartContainer tells plugins the container is about to start; a
// plugin's error is returned and fails StartContainer.
func (n *NRI) StartContainer(ctx context.Context, ctr *container.Container) error {
	return n.a.StartContainer(ctx, &api.StartContainerRequest{Pod: n.podOf(ctr), Container: n.container(ctr, nil)})
}

// PostStartContainer tells plugins the container has started.
func (n *NRI) PostStartContainer(ctx context.Context, ctr *container.Container) {
	req := &api.PostStartContainerRequest{Pod: n.podOf(ctr), Container: n.container(ctr, nil)}
	if err := n.a.PostStartContainer(ctx, req); err != nil {
		klog.FromContext(ctx).Error(err, "NRI PostStartContainer", "container", ctr.ID)
	}
}

// StopContainer tells plugins the container has stopped and applies the
// updates to other containers they answer with (resources it held may go
// to others).
func (n *NRI) StopContainer(ctx context.Context, ctr *container.Container) {
	resp, err := n.a.StopContainer(ctx, &api.StopContainerRequest{Pod: n.podOf(ctr), Container: n.container(ctr, nil)})
	if err != nil {
		klog.FromContext(ctx).Error(err, "NRI StopContainer", "container", ctr.ID)
		return
	}
	n.applyUpdates(ctx, resp.GetUpdate())
}

// RemoveContainer tells plugins the container is gone.
func (n *NRI) RemoveContainer(ctx context.Context, ctr *container.Container) {
	req := &api.RemoveContainerRequest{Pod: n.podOf(ctr), Container: n.container(ctr, nil)}
	if err := n.a.RemoveContainer(ctx, req); err != nil {
		klog.FromContext(ctx).Error(err, "NRI RemoveContainer", "container", ctr.ID)
	}
}

// synchronize is the adaptation's SyncFn: it hands a connecting plugin
// every pod and container that has finished being created. Those still
// being created are told by their hooks, which wait for the
// synchronization to end (BlockSync).
func (n *NRI) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	var pods []*api.PodSandbox
	if n.st.SandboxStore != nil {
		for _, sb := range n.st.SandboxStore.List() {
			if sb.Status().State != sandbox.StateCreating {
				pods = append(pods, n.pod(sb))
			}
		}
	}
	var ctrs []*api.Container
	if n.st.ContainerStore != nil {
		for _, ctr := range n.st.ContainerStore.List() {
			if ctr.Status().State != container.StateCreating {
				ctrs = append(ctrs, n.container(ctr, nil))
			}
		}
	}
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return err
	}
	n.applyUpdates(ctx, updates)
	return nil
}
