// Package oci builds OCI runtime specs for cri-rt from CRI requests: one for
// a pod's sandbox (pause) container and one for each workload container.
//
// The builders are pure in the sense that matters to their callers: they start
// no processes and change nothing on the host. The caller prepares everything
// a spec refers to (the mounted rootfs, the network namespace, the pod's
// /etc/hostname, /etc/hosts, /etc/resolv.conf and /dev/shm, image volumes, host
// paths of volumes; see HostPathsToCreate) and passes the paths in. The
// builders only read: the rootfs' /etc/passwd and /etc/group, seccomp profile
// files, device nodes, and a few host facts (capabilities the kernel knows,
// cgroup controllers) that decide what the runtime can be asked for.
//
// Behaviour follows containerd's CRI plugin where the CRI leaves room for
// choice, so that tools reading the specs (NRI plugins, VM runtimes, critest)
// see what they expect. Bad requests fail with errors wrapping
// errdefs.ErrInvalidArgument that name the offending CRI field.
package oci
