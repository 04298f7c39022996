package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podFiles are the files every container of the pod sees at /etc/hostname,
// /etc/hosts and /etc/resolv.conf.
type podFiles struct{ hostname, hosts, resolv string }

const defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

func writeFiles(dir string, cfg *runtimeapi.PodSandboxConfig) (podFiles, error) {
	f := podFiles{
		hostname: filepath.Join(dir, "hostname"),
		hosts:    filepath.Join(dir, "hosts"),
		resolv:   filepath.Join(dir, "resolv.conf"),
	}
	hostname := cfg.GetHostname()
	hosts := []byte(defaultHosts)
	if hostNetwork(cfg) {
		// A host-network pod is the node, by name and by hosts file.
		if h, err := os.Hostname(); err == nil && hostname == "" {
			hostname = h
		}
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = b
		}
	}
	resolv, err := resolvConf(cfg.GetDnsConfig())
	if err != nil {
		return f, err
	}
	for path, content := range map[string][]byte{f.hostname: []byte(hostname + "\n"), f.hosts: hosts, f.resolv: resolv} {
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}

// resolvConf renders the pod's DNS config, or copies the node's when the
// pod has none (kubelet passes one for every dnsPolicy but "Default").
func resolvConf(dns *runtimeapi.DNSConfig) ([]byte, error) {
	if dns == nil || (len(dns.Servers) == 0 && len(dns.Searches) == 0 && len(dns.Options) == 0) {
		b, err := os.ReadFile("/etc/resolv.conf")
		if os.IsNotExist(err) {
			return nil, nil
		}
		return b, err
	}
	var b strings.Builder
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return []byte(b.String()), nil
}
