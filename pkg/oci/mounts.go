package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Paths of the pod files a container gets.
const (
	etcHostname = "/etc/hostname"
	etcHosts    = "/etc/hosts"
	resolvConf  = "/etc/resolv.conf"
	devShm      = "/dev/shm"
)

// allowedMountOptions are the CRI mount_options cri-rt passes on. They can
// only restrict a bind mount; options that change what is mounted or how
// it propagates have their own CRI fields, and anything else could undo the
// runtime's hardening.
var allowedMountOptions = map[string]bool{
	"nosuid": true, "nodev": true, "noexec": true,
	"noatime": true, "nodiratime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true,
}

// defaultMounts are the file systems every container gets, containerd's
// set without its /run tmpfs (images expect /run from their rootfs).
// Privileged containers may write /sys and the cgroup tree. A container in
// a user namespace but the host's network namespace cannot mount sysfs (the
// kernel ties sysfs to the network namespace's owner), so it gets a
// read-only bind of the host's /sys instead, as in containerd.
func defaultMounts(privileged, sysBind, rro bool) []specs.Mount {
	sysMode := "ro"
	if privileged {
		sysMode = "rw"
	}
	sys := specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysMode}}
	if sysBind {
		ro := "ro"
		if rro {
			ro = "rro"
		}
		sys = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", ro, "nosuid", "nodev", "noexec"}}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: devShm, Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		sys,
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", sysMode}},
	}
}

// HostPathsToCreate lists the host paths of cfg's bind mounts that do not
// exist. Like containerd, cri-rt creates them as directories (0755) before
// building the spec; doing it there keeps the builders free of side effects.
func HostPathsToCreate(cfg *runtimeapi.ContainerConfig) []string {
	var out []string
	for _, m := range cfg.GetMounts() {
		p := m.GetHostPath()
		if m.GetImage() != nil || !isAbs(p) {
			continue
		}
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			out = append(out, path.Clean(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// containerPath is where a CRI mount goes: runtimes treat a relative
// destination as relative to the rootfs, so it is written that way.
func containerPath(p string) string {
	return path.Join("/", p)
}

// mountSet is the spec's mounts under construction, with the root
// propagation the request's mounts need.
type mountSet struct {
	mounts   []specs.Mount
	dests    map[string]bool
	rootProp string
}

func (s *mountSet) add(m specs.Mount) {
	s.mounts = append(s.mounts, m)
	s.dests[m.Destination] = true
}

// containerMounts builds the container's mounts: the request's (host paths
// and image volumes), image volumes only the caller knows of, the pod's
// files, then the defaults the request does not override. Request mounts
// are ordered by depth so that a mount never hides a deeper one.
func containerMounts(o *ContainerOptions, privileged bool) ([]specs.Mount, string, error) {
	pod := o.SandboxConfig.GetLinux().GetSecurityContext().GetNamespaceOptions()
	sc := o.Config.GetLinux().GetSecurityContext()
	podMapped := o.UserNS != nil && o.Features.IDMapMounts
	set := &mountSet{dests: map[string]bool{}}

	images := map[string]string{}
	for dst, src := range o.ImageVolumes {
		images[containerPath(dst)] = src
	}

	for i, m := range o.Config.GetMounts() {
		if err := requestMount(set, o, images, i, m); err != nil {
			return nil, "", err
		}
	}
	// Image volumes the caller prepared without a request mount (e.g.
	// from an image's own VOLUMEs) come next, read-only.
	for _, dst := range sortedKeys(images) {
		if set.dests[dst] {
			continue
		}
		set.add(withMappings(specs.Mount{Destination: dst, Type: "bind", Source: images[dst],
			Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev"}}, o.UserNS, podMapped))
	}

	// The pod's files. Read-only with a read-only rootfs, as in
	// containerd: a pod that cannot write its rootfs should not be able
	// to rewrite its DNS either.
	fileMode := "rw"
	if sc.GetReadonlyRootfs() {
		fileMode = "ro"
	}
	for _, f := range []struct{ dst, src string }{
		{etcHostname, o.HostnamePath}, {etcHosts, o.HostsPath}, {resolvConf, o.ResolvConfPath},
	} {
		if f.src == "" || set.dests[f.dst] {
			continue
		}
		set.add(withMappings(specs.Mount{Destination: f.dst, Type: "bind", Source: f.src,
			Options: []string{"rbind", "rprivate", "nosuid", "nodev", "noexec", fileMode}}, o.UserNS, podMapped))
	}
	if !set.dests[devShm] {
		src := o.ShmPath
		if src == "" && pod.GetIpc() == runtimeapi.NamespaceMode_NODE {
			src = devShm // host IPC: POSIX shared memory lives in the host's /dev/shm
		}
		if src != "" {
			// Not id-mapped: tmpfs supports idmap mounts only since Linux
			// 6.3, and the pod's tmpfs starts empty anyway.
			set.add(specs.Mount{Destination: devShm, Type: "bind", Source: src,
				Options: []string{"rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"}})
		}
	}

	sort.SliceStable(set.mounts, func(i, j int) bool {
		return strings.Count(set.mounts[i].Destination, "/") < strings.Count(set.mounts[j].Destination, "/")
	})

	// sysfs can only be mounted by the user namespace that owns the network
	// namespace; the pod's netns is created by cri-rt in the host's user
	// namespace, so a user-namespaced pod gets the host's /sys read-only.
	sysBind := o.UserNS != nil
	var out []specs.Mount
	for _, m := range defaultMounts(privileged, sysBind, o.Features.RecursiveReadOnly) {
		if set.dests[m.Destination] {
			continue
		}
		if set.dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue // the request brings its own /dev
		}
		out = append(out, m)
	}
	return append(out, set.mounts...), set.rootProp, nil
}

// requestMount validates one CRI mount and adds it.
func requestMount(set *mountSet, o *ContainerOptions, images map[string]string, i int, m *runtimeapi.Mount) error {
	field := fmt.Sprintf("mounts[%d]", i)
	if m.GetContainerPath() == "" {
		return invalidArg(field+".container_path", "empty")
	}
	dst := containerPath(m.GetContainerPath())
	if dst == "/" {
		return invalidArg(field+".container_path", "cannot mount over the container's root")
	}
	if set.dests[dst] {
		return invalidArg(field+".container_path", "%s is mounted twice", dst)
	}

	var src string
	var opts []string
	if m.GetImage() != nil {
		if !m.GetReadonly() {
			return invalidArg(field+".readonly", "image volumes must be read-only")
		}
		var ok bool
		if src, ok = images[dst]; !ok {
			return fmt.Errorf("%s: image volume %s was not prepared: %w", field, dst, errdefs.ErrFailedPrecondition)
		}
		// KEP-4639: image volumes are read-only; their binaries may run
		// (critest checks that an image volume is not noexec).
		opts = []string{"rbind", "nosuid", "nodev"}
	} else {
		src = m.GetHostPath()
		if !isAbs(src) {
			return invalidArg(field+".host_path", "%q is not an absolute path", src)
		}
		src = path.Clean(src)
		opts = []string{"rbind"}
	}

	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		// Host mounts reach the container only if the rootfs is at least
		// a slave of the host too.
		opts = append(opts, "rslave")
		if set.rootProp != "rshared" {
			set.rootProp = "rslave"
		}
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
		set.rootProp = "rshared"
	default:
		return invalidArg(field+".propagation", "unknown propagation %d", m.GetPropagation())
	}

	switch {
	case m.GetRecursiveReadOnly():
		if !m.GetReadonly() {
			return invalidArg(field+".recursive_read_only", "requires readonly")
		}
		if !o.Features.RecursiveReadOnly {
			return invalidArg(field+".recursive_read_only", "the runtime does not support recursive read-only mounts")
		}
		if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			// A mount propagated in later could not be made read-only.
			return invalidArg(field+".propagation", "recursive read-only mounts need PROPAGATION_PRIVATE, got %s", m.GetPropagation())
		}
		opts = append(opts, "rro")
	case m.GetReadonly():
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}

	for j, mo := range m.GetMountOptions() {
		if !allowedMountOptions[mo] {
			return invalidArg(fmt.Sprintf("%s.mount_options[%d]", field, j), "option %q is not allowed", mo)
		}
		if !slices.Contains(opts, mo) {
			opts = append(opts, mo)
		}
	}

	mnt := specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	switch {
	case len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0:
		// kubelet sets these on volumes of pods with a user namespace.
		if !o.Features.IDMapMounts {
			return invalidArg(field+".uidMappings", "the runtime does not support id-mapped mounts")
		}
		if len(m.GetUidMappings()) == 0 || len(m.GetGidMappings()) == 0 {
			return invalidArg(field+".uidMappings", "id-mapped mounts need both UID and GID mappings")
		}
		mnt.UIDMappings = criMappings(m.GetUidMappings())
		mnt.GIDMappings = criMappings(m.GetGidMappings())
	case m.GetImage() != nil:
		// Image volumes are cri-rt's own: they get the pod's mappings
		// like the pod's files, so their owners look right in the pod.
		mnt = withMappings(mnt, o.UserNS, o.UserNS != nil && o.Features.IDMapMounts)
	}
	set.add(mnt)
	return nil
}

// withMappings id-maps a mount cri-rt adds itself with the pod's mappings.
func withMappings(m specs.Mount, u *UserNamespace, enabled bool) specs.Mount {
	if enabled && u != nil {
		m.UIDMappings = slices.Clone(u.UIDMappings)
		m.GIDMappings = slices.Clone(u.GIDMappings)
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
