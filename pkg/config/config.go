// Package config holds cri-rt's configuration: one TOML document with
// embedded defaults. The struct tags are the contract with operators: the
// `toml` names are the keys, and the `comment` tags are the one-line
// documentation that `cri-rt config default` prints, so the printed file and
// the code cannot drift apart.
package config

import (
	"time"
)

// DefaultConfigPath is read when --config is not given. A missing file at
// this path means "use the defaults"; a missing file named explicitly is an error.
const DefaultConfigPath = "/etc/cri-rt/config.toml"

// Config is the whole daemon configuration.
type Config struct {
	Root                     string   `toml:"root" comment:"Persistent data: images, layers, metadata DB. Created with mode 0711."`
	State                    string   `toml:"state" comment:"Runtime state (tmpfs): sockets, netns pins, container bundles, monitor state."`
	OOMScore                 int      `toml:"oom_score" comment:"oom_score_adj of the daemon (-1000..1000). Lowering it needs CAP_SYS_RESOURCE; without it the value is clamped with a warning."`
	LogLevel                 string   `toml:"log_level" comment:"Log verbosity: error, warn, info, debug or trace (or a klog -v number)."`
	CgroupDriver             string   `toml:"cgroup_driver" comment:"cgroup manager for pods and containers: \"cgroupfs\" or \"systemd\". Must match kubelet's cgroupDriver."`
	SandboxImage             string   `toml:"sandbox_image" comment:"Image of the pause container that holds each pod's namespaces. Always pinned."`
	DefaultRuntime           string   `toml:"default_runtime" comment:"Runtime handler used when a pod names none; must be a key of [runtimes]."`
	MaxConcurrentDownloads   int      `toml:"max_concurrent_downloads" comment:"Layers downloaded at once per image pull."`
	ImagePullProgressTimeout Duration `toml:"image_pull_progress_timeout" comment:"Cancel a pull that receives no bytes for this long (not a total deadline). \"0s\" disables it."`

	GRPC     GRPCConfig                `toml:"grpc" comment:"The CRI gRPC endpoint that kubelet and crictl connect to."`
	Metrics  MetricsConfig             `toml:"metrics" comment:"Prometheus metrics."`
	Debug    DebugConfig               `toml:"debug" comment:"Go profiling of the daemon, for diagnosing CPU or memory use."`
	Runtimes map[string]RuntimeHandler `toml:"runtimes" comment:"OCI runtime handlers, selected by a pod's RuntimeClass handler name."`
	CNI      CNIConfig                 `toml:"cni" comment:"Pod networking through CNI plugins."`
	Stream   StreamConfig              `toml:"stream" comment:"Streaming server for exec, attach and port-forward (kubelet proxies to it)."`
	Registry RegistryConfig            `toml:"registry" comment:"Per-host registry configuration: mirrors, TLS and auth."`
	NRI      NRIConfig                 `toml:"nri" comment:"Node Resource Interface: plugins that are told of pods and containers at each lifecycle step and may adjust them."`
}

// GRPCConfig configures the CRI socket.
type GRPCConfig struct {
	Address            string `toml:"address" comment:"Unix socket path of the CRI endpoint (kubelet: --container-runtime-endpoint=unix://<address>)."`
	UID                int    `toml:"uid" comment:"Owner uid of the socket."`
	GID                int    `toml:"gid" comment:"Owner gid of the socket (members may use the CRI: mode is 0660)."`
	MaxRecvMessageSize int    `toml:"max_recv_message_size" comment:"Largest request accepted, in bytes (kubelet uses 16 MiB)."`
	MaxSendMessageSize int    `toml:"max_send_message_size" comment:"Largest response sent, in bytes (kubelet uses 16 MiB)."`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	Address string `toml:"address" comment:"host:port serving /metrics, e.g. \"127.0.0.1:1338\". Empty turns metrics off."`
}

// DebugConfig configures the profiling endpoint (pkg/debug).
type DebugConfig struct {
	Address string `toml:"address" comment:"Unix socket path (created 0600), or host:port, serving Go's pprof under /debug/pprof/ (go tool pprof http://.../debug/pprof/profile). Empty turns it off."`
}

// RuntimeHandler is one OCI runtime (a RuntimeClass handler).
type RuntimeHandler struct {
	Path string `toml:"path" comment:"OCI runtime binary; looked up in PATH when not absolute."`
	Root string `toml:"root" comment:"The runtime's --root state dir; empty means <state>/runtimes/<name>."`
}

// CNIConfig configures pod networking.
type CNIConfig struct {
	BinDirs []string `toml:"bin_dirs" comment:"Directories searched, in order, for CNI plugin binaries."`
	ConfDir string   `toml:"conf_dir" comment:"Directory of CNI network configs; the first .conflist/.conf (by name) is used."`
	// ConfTemplate is rendered when kubelet reports the node's pod CIDR.
	ConfTemplate string `toml:"conf_template" comment:"Go template of a CNI conflist, written to conf_dir/10-cri-rt.conflist when kubelet sends the pod CIDR (UpdateRuntimeConfig); fields .PodCIDR, .PodCIDRRanges, .Routes. Empty: kubelet's CIDR is only recorded."`
}

// StreamConfig configures the exec/attach/port-forward server.
type StreamConfig struct {
	Address     string   `toml:"address" comment:"Address the streaming server listens on. Keep it on loopback unless kubelet runs elsewhere."`
	Port        int      `toml:"port" comment:"TCP port; 0 lets the kernel choose."`
	IdleTimeout Duration `toml:"idle_timeout" comment:"Close a streaming session idle for this long."`
	TLSCertFile string   `toml:"tls_cert_file" comment:"Serve TLS with this certificate (PEM); empty serves plain HTTP."`
	TLSKeyFile  string   `toml:"tls_key_file" comment:"Private key of tls_cert_file (PEM)."`
}

// NRIConfig configures the runtime side of the Node Resource Interface
// (github.com/containerd/nri), the plugin protocol containerd and CRI-O
// serve. Only plugins that connect to the socket are served; cri-rt does
// not launch plugins itself.
type NRIConfig struct {
	Enable                    bool     `toml:"enable" comment:"Serve NRI plugins. A plugin's refusal fails RunPodSandbox or CreateContainer."`
	SocketPath                string   `toml:"socket_path" comment:"Unix socket NRI plugins connect to. If another live process already serves it (e.g. containerd), cri-rt leaves it alone and runs without NRI, logging why."`
	PluginRegistrationTimeout Duration `toml:"plugin_registration_timeout" comment:"How long a connecting plugin has to register and be configured."`
	PluginRequestTimeout      Duration `toml:"plugin_request_timeout" comment:"How long a plugin has to answer one request, synchronization included; one that takes longer is disconnected and the request goes on without it."`
}

// RegistryConfig configures image registries per host. Both forms operators
// know from containerd are accepted and merged; hosts.toml wins where both
// speak about the same host.
type RegistryConfig struct {
	ConfigPath string                        `toml:"config_path" comment:"Directory of containerd-style <host>/hosts.toml files (and _default/hosts.toml). Missing is fine."`
	Mirrors    map[string]MirrorConfig       `toml:"mirrors,omitempty" comment:"Inline mirrors: [registry.mirrors.\"docker.io\"] endpoint = [\"https://mirror.example\"]."`
	Configs    map[string]RegistryHostConfig `toml:"configs,omitempty" comment:"Inline TLS and auth per registry host: [registry.configs.\"host:port\".tls] / .auth."`
}

// MirrorConfig lists the endpoints tried, in order, for one registry host;
// the upstream host itself is tried last.
type MirrorConfig struct {
	Endpoints []string `toml:"endpoint" comment:"Endpoint URLs (https:// or http://), tried in order before the upstream host."`
}

// RegistryHostConfig holds TLS and credentials for one registry host.
type RegistryHostConfig struct {
	TLS  *TLSConfig  `toml:"tls,omitempty" comment:"TLS settings for this host."`
	Auth *AuthConfig `toml:"auth,omitempty" comment:"Credentials for this host."`
}

// TLSConfig is the TLS part of a registry host config.
type TLSConfig struct {
	InsecureSkipVerify bool   `toml:"insecure_skip_verify" comment:"Do not verify the server's certificate."`
	CAFile             string `toml:"ca_file" comment:"PEM file of CA certificates to trust for this host."`
	CertFile           string `toml:"cert_file" comment:"Client certificate (PEM) for mutual TLS."`
	KeyFile            string `toml:"key_file" comment:"Client key (PEM) for mutual TLS."`
}

// AuthConfig holds credentials for one registry host.
type AuthConfig struct {
	Username      string `toml:"username" comment:"Basic-auth user name."`
	Password      string `toml:"password" comment:"Basic-auth password."`
	Auth          string `toml:"auth" comment:"base64(username:password), as in a docker config.json."`
	IdentityToken string `toml:"identitytoken" comment:"OAuth2 refresh token exchanged for bearer tokens."`
}

// Default returns the embedded defaults: cri-rt serves with no config file.
func Default() *Config {
	return &Config{
		Root:                     "/var/lib/cri-rt",
		State:                    "/run/cri-rt",
		OOMScore:                 -999,
		LogLevel:                 "info",
		CgroupDriver:             CgroupDriverCgroupfs,
		SandboxImage:             "registry.k8s.io/pause:3.10",
		DefaultRuntime:           "runc",
		MaxConcurrentDownloads:   3,
		ImagePullProgressTimeout: Duration(5 * time.Minute),
		GRPC: GRPCConfig{
			Address:            "/run/cri-rt/cri-rt.sock",
			MaxRecvMessageSize: 16 << 20,
			MaxSendMessageSize: 16 << 20,
		},
		Runtimes: map[string]RuntimeHandler{
			"runc": {Path: "runc"},
		},
		CNI: CNIConfig{
			BinDirs: []string{"/opt/cni/bin", "/usr/lib/cni"},
			ConfDir: "/etc/cni/net.d",
		},
		Stream: StreamConfig{
			Address:     "127.0.0.1",
			IdleTimeout: Duration(4 * time.Hour),
		},
		Registry: RegistryConfig{
			ConfigPath: "/etc/cri-rt/certs.d",
		},
		// NRI's own defaults, as containerd and CRI-O use them: plugins
		// find the runtime at the well-known socket.
		NRI: NRIConfig{
			Enable:                    true,
			SocketPath:                "/var/run/nri/nri.sock",
			PluginRegistrationTimeout: Duration(5 * time.Second),
			PluginRequestTimeout:      Duration(2 * time.Second),
		},
	}
}

// Cgroup drivers.
const (
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
)

// RuntimeRoot returns the --root directory of the named runtime handler.
func (c *Config) RuntimeRoot(name string) string {
	if r, ok := c.Runtimes[name]; ok && r.Root != "" {
		return r.Root
	}
	return c.State + "/runtimes/" + name
}

// Redacted returns a copy with registry secrets masked, for output that may
// be read by others than the operator (crictl info, logs).
func (c *Config) Redacted() *Config {
	cp := *c
	if len(c.Registry.Configs) > 0 {
		cp.Registry.Configs = make(map[string]RegistryHostConfig, len(c.Registry.Configs))
		for host, hc := range c.Registry.Configs {
			if hc.Auth != nil {
				a := *hc.Auth
				for _, s := range []*string{&a.Password, &a.Auth, &a.IdentityToken} {
					if *s != "" {
						*s = "***"
					}
				}
				hc.Auth = &a
			}
			cp.Registry.Configs[host] = hc
		}
	}
	return &cp
}
