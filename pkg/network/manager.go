package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// PortMapping is a hostPort of a pod, for the portmap plugin.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Bandwidth limits from the kubernetes.io/{ingress,egress}-bandwidth
// annotations, in bits per second, for the bandwidth plugin.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// Pod is what CNI is told about a pod.
type Pod struct {
	ID        string // the sandbox ID (CNI container ID)
	NetNS     string // pinned netns path; "" on teardown when it is gone
	Name      string
	Namespace string
	UID       string
	Ports     []PortMapping
	Bandwidth *Bandwidth
}

// Attachment is the outcome of setting up a pod's network, kept with the
// sandbox so teardown uses exactly the config that set it up.
type Attachment struct {
	ConfList json.RawMessage `json:"confList"`
	Result   json.RawMessage `json:"result"`
	IPs      []string        `json:"ips"`
}

// Manager runs CNI plugins for pods. It rereads the conf dir when its
// content changes, so a config dropped in later makes the node ready
// without a restart.
type Manager struct {
	confDir string
	cni     *libcni.CNIConfig
	// Observe, when set, is told of every CNI operation (for metrics).
	Observe func(op string, d time.Duration, err error)

	mu      sync.Mutex
	sig     string
	conf    *libcni.NetworkConfigList
	confErr error
}

// NewManager returns a manager for plugins in binDirs and configs in
// confDir; cacheDir keeps libcni's per-attachment cache.
func NewManager(binDirs []string, confDir, cacheDir string) *Manager {
	return &Manager{confDir: confDir, cni: libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, nil)}
}

// signature changes whenever a file in the conf dir is added, removed or
// modified; computing it is a readdir and a few stats.
func (m *Manager) signature() string {
	ents, err := os.ReadDir(m.confDir)
	if err != nil {
		return "error:" + err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", e.Name(), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// current returns the network config in use, reloading it if the conf
// dir changed.
func (m *Manager) current() (*libcni.NetworkConfigList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sig := m.signature(); sig != m.sig || (m.conf == nil && m.confErr == nil) {
		m.sig = sig
		m.conf, _, m.confErr = LoadDefaultNetwork(m.confDir)
	}
	return m.conf, m.confErr
}

// Status returns nil when a usable network config is loaded.
func (m *Manager) Status() error {
	_, err := m.current()
	return err
}

// ConfName is the name of the network in use ("" if none).
func (m *Manager) ConfName() string {
	c, _ := m.current()
	if c == nil {
		return ""
	}
	return c.Name
}

func runtimeConf(p Pod) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: p.ID,
		NetNS:       p.NetNS,
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
			{"K8S_POD_UID", p.UID},
		},
		CapabilityArgs: map[string]any{},
	}
	if len(p.Ports) > 0 {
		rt.CapabilityArgs["portMappings"] = p.Ports
	}
	if p.Bandwidth != nil {
		rt.CapabilityArgs["bandwidth"] = p.Bandwidth
	}
	return rt
}

// Setup runs CNI ADD for the pod with the current config.
func (m *Manager) Setup(ctx context.Context, p Pod) (*Attachment, error) {
	conf, err := m.current()
	if err != nil {
		return nil, fmt.Errorf("network not ready: %w: %w", err, errdefs.ErrFailedPrecondition)
	}
	start := time.Now()
	res, err := m.cni.AddNetworkList(ctx, conf, runtimeConf(p))
	m.observe("add", start, err)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD on network %q: %w", conf.Name, describePluginError(err))
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI result of network %q: %w", conf.Name, err)
	}
	raw, _ := json.Marshal(cur)
	att := &Attachment{ConfList: conf.Bytes, Result: raw}
	att.IPs = podIPs(cur)
	return att, nil
}

// podIPs lists the pod's addresses on its interface, IPv4 first, as kubelet
// takes the first as the primary pod IP.
func podIPs(r *current.Result) []string {
	var v4, v6 []string
	for _, ipc := range r.IPs {
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(r.Interfaces) && r.Interfaces[*ipc.Interface].Sandbox == "" {
			continue // an address on the host side
		}
		if ipc.Address.IP.To4() != nil {
			v4 = append(v4, ipc.Address.IP.String())
		} else {
			v6 = append(v6, ipc.Address.IP.String())
		}
	}
	return append(v4, v6...)
}

// Teardown runs CNI DEL with the config the pod was set up with (the
// current one when unknown). It is idempotent, and works without the
// netns (pass NetNS "") so IPs are released even after a reboot.
func (m *Manager) Teardown(ctx context.Context, p Pod, att *Attachment) error {
	var conf *libcni.NetworkConfigList
	if att != nil && len(att.ConfList) > 0 {
		c, err := libcni.NetworkConfFromBytes(att.ConfList)
		if err == nil {
			conf = c
		}
	}
	if conf == nil {
		c, err := m.current()
		if err != nil {
			return fmt.Errorf("no network config to tear down with: %w", err)
		}
		conf = c
	}
	start := time.Now()
	err := m.cni.DelNetworkList(ctx, conf, runtimeConf(p))
	m.observe("del", start, err)
	if err != nil {
		return fmt.Errorf("CNI DEL on network %q: %w", conf.Name, describePluginError(err))
	}
	return nil
}

// describePluginError keeps the plugin's own message (libcni's errors
// name the plugin and its message).
func describePluginError(err error) error {
	var cerr *cnitypes.Error
	if errors.As(err, &cerr) {
		return fmt.Errorf("%s: %s", cerr.Msg, cerr.Details)
	}
	return err
}

// IPsOf extracts the pod IPs of a stored attachment.
func IPsOf(att *Attachment) []string {
	if att == nil {
		return nil
	}
	return att.IPs
}

// ParseBandwidth reads the kubernetes.io/{ingress,egress}-bandwidth
// annotations ("10M", "1G"); nil when neither is set.
func ParseBandwidth(annotations map[string]string) (*Bandwidth, error) {
	in, out := annotations["kubernetes.io/ingress-bandwidth"], annotations["kubernetes.io/egress-bandwidth"]
	if in == "" && out == "" {
		return nil, nil
	}
	bw := &Bandwidth{}
	var err error
	if in != "" {
		if bw.IngressRate, err = parseQuantity(in); err != nil {
			return nil, fmt.Errorf("annotation kubernetes.io/ingress-bandwidth: %w", err)
		}
		bw.IngressBurst = 1<<31 - 1 // kubelet's dockershim used math.MaxInt32 as burst
	}
	if out != "" {
		if bw.EgressRate, err = parseQuantity(out); err != nil {
			return nil, fmt.Errorf("annotation kubernetes.io/egress-bandwidth: %w", err)
		}
		bw.EgressBurst = 1<<31 - 1
	}
	return bw, nil
}

func parseQuantity(s string) (uint64, error) {
	mult, num := uint64(1), s
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid quantity %q: %w", s, errdefs.ErrInvalidArgument)
	}
	return v * mult, nil
}

func (m *Manager) observe(op string, start time.Time, err error) {
	if m.Observe != nil {
		m.Observe(op, time.Since(start), err)
	}
}
