package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Validate checks every value that has a constrained domain and names the
// offending key, so a bad config fails at start instead of at first use.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !filepath.IsAbs(c.Root) {
		bad("root", "must be an absolute path, got %q", c.Root)
	}
	if !filepath.IsAbs(c.State) {
		bad("state", "must be an absolute path, got %q", c.State)
	}
	if c.OOMScore < -1000 || c.OOMScore > 1000 {
		bad("oom_score", "must be within -1000..1000, got %d", c.OOMScore)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		bad("log_level", "%v", err)
	}
	if c.CgroupDriver != CgroupDriverCgroupfs && c.CgroupDriver != CgroupDriverSystemd {
		bad("cgroup_driver", "must be %q or %q, got %q", CgroupDriverCgroupfs, CgroupDriverSystemd, c.CgroupDriver)
	}
	if c.SandboxImage == "" {
		bad("sandbox_image", "must not be empty")
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		bad("default_runtime", "%q is not a configured runtime (have %s)", c.DefaultRuntime, strings.Join(c.RuntimeNames(), ", "))
	}
	for name, rt := range c.Runtimes {
		if rt.Path == "" {
			bad("runtimes."+name+".path", "must not be empty")
		}
		if rt.Root != "" && !filepath.IsAbs(rt.Root) {
			bad("runtimes."+name+".root", "must be an absolute path, got %q", rt.Root)
		}
	}
	if c.MaxConcurrentDownloads < 1 {
		bad("max_concurrent_downloads", "must be at least 1, got %d", c.MaxConcurrentDownloads)
	}
	if c.ImagePullProgressTimeout < 0 {
		bad("image_pull_progress_timeout", "must not be negative")
	}
	if !filepath.IsAbs(c.GRPC.Address) {
		bad("grpc.address", "must be an absolute unix socket path, got %q", c.GRPC.Address)
	}
	if a := c.Debug.Address; a != "" && !filepath.IsAbs(a) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("debug.address", "must be an absolute unix socket path or host:port, got %q", a)
		}
	}
	if c.GRPC.UID < 0 {
		bad("grpc.uid", "must not be negative")
	}
	if c.GRPC.GID < 0 {
		bad("grpc.gid", "must not be negative")
	}
	if c.GRPC.MaxRecvMessageSize <= 0 {
		bad("grpc.max_recv_message_size", "must be positive, got %d", c.GRPC.MaxRecvMessageSize)
	}
	if c.GRPC.MaxSendMessageSize <= 0 {
		bad("grpc.max_send_message_size", "must be positive, got %d", c.GRPC.MaxSendMessageSize)
	}
	if len(c.CNI.BinDirs) == 0 {
		bad("cni.bin_dirs", "must name at least one directory")
	}
	if !filepath.IsAbs(c.CNI.ConfDir) {
		bad("cni.conf_dir", "must be an absolute path, got %q", c.CNI.ConfDir)
	}
	if c.CNI.ConfTemplate != "" && !filepath.IsAbs(c.CNI.ConfTemplate) {
		bad("cni.conf_template", "must be an absolute path, got %q", c.CNI.ConfTemplate)
	}
	if c.Stream.Port < 0 || c.Stream.Port > 65535 {
		bad("stream.port", "must be within 0..65535, got %d", c.Stream.Port)
	}
	if c.Stream.IdleTimeout < 0 {
		bad("stream.idle_timeout", "must not be negative")
	}
	if (c.Stream.TLSCertFile == "") != (c.Stream.TLSKeyFile == "") {
		bad("stream.tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}
	for host, m := range c.Registry.Mirrors {
		if len(m.Endpoints) == 0 {
			bad("registry.mirrors."+strconv.Quote(host)+".endpoint", "must list at least one URL")
		}
		for _, ep := range m.Endpoints {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("registry.mirrors."+strconv.Quote(host)+".endpoint", "%q is not an http:// or https:// URL", ep)
			}
		}
	}
	for host, hc := range c.Registry.Configs {
		if hc.TLS != nil && (hc.TLS.CertFile == "") != (hc.TLS.KeyFile == "") {
			bad("registry.configs."+strconv.Quote(host)+".tls", "cert_file and key_file must be set together")
		}
	}
	if c.NRI.Enable && !filepath.IsAbs(c.NRI.SocketPath) {
		bad("nri.socket_path", "must be an absolute unix socket path, got %q", c.NRI.SocketPath)
	}
	if c.NRI.PluginRegistrationTimeout <= 0 {
		bad("nri.plugin_registration_timeout", "must be positive")
	}
	if c.NRI.PluginRequestTimeout <= 0 {
		bad("nri.plugin_request_timeout", "must be positive")
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// RuntimeNames returns the configured runtime handler names, sorted.
func (c *Config) RuntimeNames() []string {
	names := make([]string, 0, len(c.Runtimes))
	for n := range c.Runtimes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ParseLogLevel maps a log_level value to a klog verbosity.
func ParseLogLevel(level string) (int, error) {
	switch strings.ToLower(level) {
	case "error", "warn", "warning", "info":
		return 0, nil
	case "debug":
		return 4, nil
	case "trace":
		return 6, nil
	}
	if n, err := strconv.Atoi(level); err == nil && n >= 0 {
		return n, nil
	}
	return 0, fmt.Errorf("unknown log level %q (use error, warn, info, debug, trace or a number)", level)
}
