package oci

import (
	"strconv"

	"github.com/opencontainers/runtime-tools/generate"
)

// Annotations cri-rt writes into specs. The io.kubernetes.cri.* keys are
// containerd's: NRI plugins, VM runtimes (Kata) and monitoring tools read
// them to tell sandboxes from containers and to find a container's pod.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxLogDir    = "io.kubernetes.cri.sandbox-log-directory"
	AnnotationSandboxImageName = "io.kubernetes.cri.podsandbox.image-name"
	AnnotationSandboxCPUPeriod = "io.kubernetes.cri.sandbox-cpu-period"
	AnnotationSandboxCPUQuota  = "io.kubernetes.cri.sandbox-cpu-quota"
	AnnotationSandboxCPUShares = "io.kubernetes.cri.sandbox-cpu-shares"
	AnnotationSandboxMemory    = "io.kubernetes.cri.sandbox-memory"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"

	// ContainerTypeSandbox and ContainerTypeContainer are the values of
	// AnnotationContainerType.
	ContainerTypeSandbox   = "sandbox"
	ContainerTypeContainer = "container"

	// cri-rt's own: where the pod's files are, recorded on the sandbox.
	AnnotationHostnamePath   = "io.cri-rt.hostname-path"
	AnnotationHostsPath      = "io.cri-rt.hosts-path"
	AnnotationResolvConfPath = "io.cri-rt.resolv-conf-path"
	AnnotationShmPath        = "io.cri-rt.shm-path"
)

// setAnnotations writes the request's annotations, then the standard ones
// (which a request cannot spoof), then the caller's extras.
func setAnnotations(g *generate.Generator, request, standard, extra map[string]string) {
	g.ClearAnnotations()
	for _, m := range []map[string]string{request, standard, extra} {
		for k, v := range m {
			g.AddAnnotation(k, v)
		}
	}
}

func sandboxAnnotations(o *SandboxOptions) map[string]string {
	md := o.Config.GetMetadata()
	a := map[string]string{
		AnnotationContainerType:    ContainerTypeSandbox,
		AnnotationSandboxID:        o.ID,
		AnnotationSandboxNamespace: md.GetNamespace(),
		AnnotationSandboxUID:       md.GetUid(),
		AnnotationSandboxName:      md.GetName(),
		AnnotationSandboxLogDir:    o.Config.GetLogDirectory(),
	}
	if o.ImageName != "" {
		a[AnnotationSandboxImageName] = o.ImageName
	}
	// The pod's total resources, for runtimes that size a VM from them;
	// containerd writes the same.
	if r := o.Config.GetLinux().GetResources(); r != nil {
		a[AnnotationSandboxCPUPeriod] = strconv.FormatInt(r.GetCpuPeriod(), 10)
		a[AnnotationSandboxCPUQuota] = strconv.FormatInt(r.GetCpuQuota(), 10)
		a[AnnotationSandboxCPUShares] = strconv.FormatInt(r.GetCpuShares(), 10)
		a[AnnotationSandboxMemory] = strconv.FormatInt(r.GetMemoryLimitInBytes(), 10)
	}
	for k, v := range map[string]string{
		AnnotationHostnamePath:   o.HostnamePath,
		AnnotationHostsPath:      o.HostsPath,
		AnnotationResolvConfPath: o.ResolvConfPath,
		AnnotationShmPath:        o.ShmPath,
	} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

func containerAnnotations(o *ContainerOptions) map[string]string {
	md := o.SandboxConfig.GetMetadata()
	image := o.ImageName
	if image == "" {
		image = o.Config.GetImage().GetUserSpecifiedImage()
	}
	if image == "" {
		image = o.Config.GetImage().GetImage()
	}
	return map[string]string{
		AnnotationContainerType:    ContainerTypeContainer,
		AnnotationSandboxID:        o.SandboxID,
		AnnotationSandboxNamespace: md.GetNamespace(),
		AnnotationSandboxUID:       md.GetUid(),
		AnnotationSandboxName:      md.GetName(),
		AnnotationContainerName:    o.Config.GetMetadata().GetName(),
		AnnotationImageName:        image,
	}
}
