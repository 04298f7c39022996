package preflight

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/monitor"
	"github.com/cri-rt/cri-rt/pkg/network"
)

// checkRuntimes finds and runs each configured OCI runtime. A missing
// default runtime is a FAIL (no pod can start); a missing extra handler is
// a WARN, because the daemon itself treats it the same way: only pods of
// that RuntimeClass fail.
func checkRuntimes(ctx context.Context, o *Options) []Result {
	var rs []Result
	for _, name := range o.Config.RuntimeNames() {
		h := o.Config.Runtimes[name]
		check := "runtime " + name
		bad := warn
		if name == o.Config.DefaultRuntime {
			check += " (default)"
			bad = fail
		}
		path, err := lookPath(h.Path)
		if err != nil {
			fix := fmt.Sprintf("install it (runc: apt-get install runc) or set runtimes.%s.path to its absolute path", name)
			rs = append(rs, bad(check, fix, "%s not found: %v", h.Path, err))
			continue
		}
		out, err := runCommand(ctx, o, path, "--version")
		if err != nil {
			rs = append(rs, bad(check, "run `"+path+" --version` to see why it fails", "%s --version: %v", path, err))
			continue
		}
		rs = append(rs, ok(check, "%s: %s", path, firstLine(out)))
	}
	return rs
}

// lookPath resolves a runtime path the way the daemon does: absolute paths
// as they are, bare names through PATH.
func lookPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable file", p)
		}
		return p, nil
	}
	return exec.LookPath(p)
}

func runCommand(ctx context.Context, o *Options, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if s := strings.TrimSpace(stderr.String()); s != "" {
			return "", fmt.Errorf("%w: %s", err, firstLine(s))
		}
		return "", err
	}
	return string(out), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// checkMonitor looks for cri-rt-monitor where the daemon will: next to this
// binary (the check runs from the same executable as the daemon), then in
// PATH. Without it no pod or container can start.
func checkMonitor() Result {
	p, err := monitor.FindBinary()
	if err != nil {
		return fail("monitor", "install bin/cri-rt-monitor next to cri-rt (deploy/install.sh does)", "%v", err)
	}
	return ok("monitor", "%s", p)
}

// standardPlugins are the CNI plugins of the default bridge network (and
// that most network add-ons expect to find beside their own).
var standardPlugins = []string{"bridge", "host-local", "portmap", "loopback"}

// findPlugin returns the first executable named name in dirs, as libcni
// searches them.
func findPlugin(dirs []string, name string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// checkCNIPlugins reports where the standard plugins are. Missing ones are
// a WARN: a network add-on may bring its own plugins, and whether the
// active network can work is checkCNIConfig's question.
func checkCNIPlugins(o *Options) Result {
	const check = "cni plugins"
	dirs := o.Config.CNI.BinDirs
	var missing []string
	where := map[string][]string{} // dir -> plugins found there
	for _, p := range standardPlugins {
		if f := findPlugin(dirs, p); f != "" {
			where[filepath.Dir(f)] = append(where[filepath.Dir(f)], p)
		} else {
			missing = append(missing, p)
		}
	}
	var found []string
	for _, d := range dirs {
		if ps := where[d]; len(ps) > 0 {
			found = append(found, strings.Join(ps, ", ")+" in "+d)
		}
	}
	if len(missing) > 0 {
		return warn(check, "apt-get install containernetworking-plugins (installs to /usr/lib/cni), or put the plugins in one of cni.bin_dirs",
			"%s not found in %s%s", strings.Join(missing, ", "), strings.Join(dirs, ":"), prefixed("; found ", strings.Join(found, "; ")))
	}
	return ok(check, "%s", strings.Join(found, "; "))
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// checkCNIConfig loads the network pods join, exactly as the daemon picks
// it, and asks every plugin it names (IPAM included) which CNI versions it
// speaks: a missing plugin or a config version the plugin does not support
// fails every pod at sandbox creation, which is the most common way a
// freshly installed node stays NotReady.
func checkCNIConfig(o *Options) Result {
	const check = "cni config"
	dir := o.Config.CNI.ConfDir
	list, file, err := network.LoadDefaultNetwork(dir)
	if err != nil {
		if errors.Is(err, network.ErrNoConfig) || errors.Is(err, os.ErrNotExist) {
			return warn(check, "install the cluster's network add-on (it writes its config there), or run deploy/install.sh --cni-bridge for a single-node bridge network",
				"%v; the node stays NotReady and pods cannot start until one appears", err)
		}
		return fail(check, "fix the permissions or path of cni.conf_dir", "%v", err)
	}
	var types []string
	for _, p := range list.Plugins {
		if p.Network == nil {
			continue
		}
		types = append(types, p.Network.Type)
		if p.Network.IPAM.Type != "" {
			types = append(types, p.Network.IPAM.Type)
		}
	}
	cni := libcni.NewCNIConfig(o.Config.CNI.BinDirs, nil)
	var problems []string
	for _, t := range uniq(types) {
		if findPlugin(o.Config.CNI.BinDirs, t) == "" {
			problems = append(problems, fmt.Sprintf("plugin %q not found in %s", t, strings.Join(o.Config.CNI.BinDirs, ":")))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		vi, err := cni.GetVersionInfo(ctx, t)
		cancel()
		if err != nil {
			problems = append(problems, fmt.Sprintf("plugin %q: VERSION: %v", t, err))
			continue
		}
		if list.CNIVersion != "" && !slices.Contains(vi.SupportedVersions(), list.CNIVersion) {
			problems = append(problems, fmt.Sprintf("plugin %q does not support cniVersion %s (supports %s)", t, list.CNIVersion, strings.Join(vi.SupportedVersions(), ", ")))
		}
	}
	if len(problems) > 0 {
		return fail(check, "install the missing plugins into cni.bin_dirs, or lower cniVersion in "+file,
			"%s (network %q): %s", file, list.Name, strings.Join(problems, "; "))
	}
	return ok(check, "%s: network %q, cniVersion %s, plugins %s", file, list.Name, list.CNIVersion, strings.Join(uniq(types), ", "))
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// cgroupVersion tells v1, hybrid or v2 from the filesystem types, as runc
// and kubelet do.
func cgroupVersion(root string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return "", err
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2", nil
	}
	if err := unix.Statfs(filepath.Join(root, "unified"), &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v1 (hybrid: v2 at unified/)", nil
	}
	return "v1", nil
}

// requiredControllers are what kubelet and runc need to enforce pod
// resources and to pause and kill containers (freezer, devices: v1 only;
// v2 has them built in).
var requiredControllers = map[bool][]string{
	false: {"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer"},
	true:  {"cpu", "cpuset", "memory", "pids"},
}

func checkCgroups(o *Options) []Result {
	ver, err := cgroupVersion(o.CgroupRoot)
	if err != nil {
		return []Result{fail("cgroups", "mount the cgroup filesystem at /sys/fs/cgroup", "%s: %v", o.CgroupRoot, err)}
	}
	v2 := ver == "v2"
	var present []string
	if v2 {
		b, err := os.ReadFile(filepath.Join(o.CgroupRoot, "cgroup.controllers"))
		if err != nil {
			return []Result{fail("cgroups", "mount cgroup2 at /sys/fs/cgroup", "%v", err)}
		}
		present = strings.Fields(string(b))
	} else {
		for _, c := range requiredControllers[false] {
			if _, err := os.Stat(filepath.Join(o.CgroupRoot, c)); err == nil {
				present = append(present, c)
			}
		}
	}
	var missing []string
	for _, c := range requiredControllers[v2] {
		if !slices.Contains(present, c) {
			missing = append(missing, c)
		}
	}
	var rs []Result
	if len(missing) > 0 {
		rs = append(rs, fail("cgroups", "enable the controllers on the kernel command line (e.g. cgroup_enable=memory) or, on v2, in the parent's cgroup.subtree_control",
			"cgroup %s, missing controllers: %s", ver, strings.Join(missing, ", ")))
	} else {
		rs = append(rs, ok("cgroups", "cgroup %s, controllers %s", ver, strings.Join(requiredControllers[v2], ", ")))
	}

	driver := o.Config.CgroupDriver
	systemd := isDir(o.SystemdDir)
	switch {
	case driver == config.CgroupDriverSystemd && !systemd:
		rs = append(rs, fail("cgroup driver", `set cgroup_driver = "cgroupfs" (and kubelet's cgroupDriver: cgroupfs)`,
			"cgroup_driver = %q, but systemd is not the init system (%s missing): pods cannot get cgroups", driver, o.SystemdDir))
	case driver == config.CgroupDriverCgroupfs && systemd:
		rs = append(rs, warn("cgroup driver", `set cgroup_driver = "systemd" in the config and cgroupDriver: systemd in kubelet's config, then restart both`,
			"cgroup_driver = %q while systemd is the init system: two managers of one cgroup tree disagree under resource pressure", driver))
	default:
		init := "no systemd"
		if systemd {
			init = "systemd is init"
		}
		rs = append(rs, ok("cgroup driver", "%s (%s)", driver, init))
	}
	return rs
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// kubeletConfig is the part of kubelet's KubeletConfiguration the checks
// read; the rest of the file is ignored.
type kubeletConfig struct {
	Kind                     string `json:"kind"`
	CgroupDriver             string `json:"cgroupDriver"`
	ContainerRuntimeEndpoint string `json:"containerRuntimeEndpoint"`
}

// checkKubelet compares kubelet's config file with cri-rt's. A cgroup
// driver mismatch is a FAIL even though kubelets with the
// KubeletCgroupDriverFromCRI feature (on by default since 1.31) ask the
// runtime instead: older kubelets, or ones with the gate off, use their own
// value and pods then land in the wrong cgroups.
func checkKubelet(o *Options) []Result {
	if o.KubeletConfig == "" {
		return nil
	}
	const check = "kubelet config"
	b, err := os.ReadFile(o.KubeletConfig)
	if err != nil {
		return []Result{fail(check, "pass the file kubelet runs with (--config of kubelet; kubeadm: /var/lib/kubelet/config.yaml)", "%v", err)}
	}
	var kc kubeletConfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return []Result{fail(check, "fix the YAML", "%s: %v", o.KubeletConfig, err)}
	}
	if kc.Kind != "KubeletConfiguration" {
		return []Result{fail(check, "pass kubelet's KubeletConfiguration file", "%s: kind is %q, not KubeletConfiguration", o.KubeletConfig, kc.Kind)}
	}
	var rs []Result
	ours := o.Config.CgroupDriver
	theirs := kc.CgroupDriver
	shown := theirs
	if theirs == "" {
		// kubelet's own default when the field is absent.
		theirs, shown = config.CgroupDriverCgroupfs, "unset (kubelet default cgroupfs)"
	}
	if theirs != ours {
		rs = append(rs, fail("kubelet cgroup driver", fmt.Sprintf("set cgroupDriver: %s in %s (or cgroup_driver = %q in cri-rt's config) and restart kubelet", ours, o.KubeletConfig, theirs),
			"kubelet cgroupDriver is %s, cri-rt uses %s", shown, ours))
	} else {
		rs = append(rs, ok("kubelet cgroup driver", "kubelet %s = cri-rt %s", shown, ours))
	}
	want := "unix://" + o.Config.GRPC.Address
	switch ep := kc.ContainerRuntimeEndpoint; {
	case ep == "":
		rs = append(rs, ok("kubelet endpoint", "not in the config file; kubelet's --container-runtime-endpoint must be %s", want))
	case strings.TrimSuffix(ep, "/") == want || ep == o.Config.GRPC.Address:
		rs = append(rs, ok("kubelet endpoint", "%s", ep))
	default:
		rs = append(rs, warn("kubelet endpoint", fmt.Sprintf("set containerRuntimeEndpoint: %s in %s and restart kubelet", want, o.KubeletConfig),
			"kubelet uses %s, not cri-rt's %s", ep, want))
	}
	return rs
}

func readSysctl(o *Options, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(o.ProcSys, strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// checkIPForward: without forwarding, pod traffic never leaves the node
// (kubeadm's preflight refuses such a node too).
func checkIPForward(o *Options) Result {
	const check = "ip_forward"
	const fix = "sysctl -w net.ipv4.ip_forward=1, and persist it in /etc/sysctl.d/ (deploy/install.sh writes 99-cri-rt.conf)"
	v, err := readSysctl(o, "net.ipv4.ip_forward")
	switch {
	case err != nil:
		return fail(check, fix, "net.ipv4.ip_forward: %v", err)
	case v != "1":
		return fail(check, fix, "net.ipv4.ip_forward = %s", v)
	}
	return ok(check, "net.ipv4.ip_forward = 1")
}

// checkBrNetfilter: without br_netfilter, traffic between two pods on the
// same bridge bypasses iptables, so Service addresses (kube-proxy's NAT
// rules) do not work between pods of one node.
func checkBrNetfilter(o *Options) Result {
	const check = "br_netfilter"
	const fix = "modprobe br_netfilter; sysctl -w net.bridge.bridge-nf-call-iptables=1; persist both (deploy/install.sh writes modules-load.d and sysctl.d files)"
	if !isDir(filepath.Join(o.ProcSys, "net", "bridge")) {
		return fail(check, fix, "%s/net/bridge missing: the br_netfilter module is not loaded", o.ProcSys)
	}
	if v, err := readSysctl(o, "net.bridge.bridge-nf-call-iptables"); err != nil || v != "1" {
		return fail(check, fix, "br_netfilter loaded, but net.bridge.bridge-nf-call-iptables = %q", v)
	}
	// IPv6 Services only: a WARN, since IPv4-only clusters do not need it.
	if v, err := readSysctl(o, "net.bridge.bridge-nf-call-ip6tables"); err != nil || v != "1" {
		return warn(check, "sysctl -w net.bridge.bridge-nf-call-ip6tables=1 (needed for IPv6 Services)", "loaded, bridge-nf-call-iptables = 1, but bridge-nf-call-ip6tables = %q", v)
	}
	return ok(check, "loaded, bridge-nf-call-iptables = 1, bridge-nf-call-ip6tables = 1")
}

// existingAncestor returns p or its nearest existing parent: the root may
// not exist before the daemon's first start, and its parent's filesystem is
// where it will be created.
func existingAncestor(p string) string {
	for {
		if _, err := os.Stat(p); err == nil || p == "/" || p == "." {
			return p
		}
		p = filepath.Dir(p)
	}
}

// Free-space thresholds follow kubelet's default hard eviction signals:
// below 10% available nodefs kubelet evicts pods, below 15% imagefs it
// garbage-collects images; and 5% free inodes.
const (
	evictPercent      = 10
	imageGCPercent    = 15
	inodeEvictPercent = 5
)

func checkDisk(o *Options) Result {
	const check = "disk"
	dir := existingAncestor(o.Config.Root)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fail(check, "check the mount holding "+o.Config.Root, "statfs %s: %v", dir, err)
	}
	avail := st.Bavail * uint64(st.Bsize)
	total := st.Blocks * uint64(st.Bsize)
	pct := percent(st.Bavail, st.Blocks)
	ipct := percent(st.Ffree, st.Files)
	detail := fmt.Sprintf("%s: %s free of %s (%d%%), %d%% inodes free", dir, human(avail), human(total), pct, ipct)
	if st.Files == 0 { // filesystems without inode accounting (btrfs)
		detail = fmt.Sprintf("%s: %s free of %s (%d%%)", dir, human(avail), human(total), pct)
		ipct = 100
	}
	const fix = "free space (crictl rmi --prune removes unused images) or move root to a larger filesystem"
	switch {
	case pct < evictPercent || ipct < inodeEvictPercent:
		return fail(check, fix, "%s: kubelet evicts pods below %d%%", detail, evictPercent)
	case pct < imageGCPercent:
		return warn(check, fix, "%s: kubelet garbage-collects images below %d%%", detail, imageGCPercent)
	}
	return ok(check, "%s", detail)
}

func percent(part, whole uint64) int {
	if whole == 0 {
		return 100
	}
	return int(part * 100 / whole)
}

func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// filesystems reports whether /proc/filesystems lists fs.
func filesystems(fs string) bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true
		}
	}
	return false
}
