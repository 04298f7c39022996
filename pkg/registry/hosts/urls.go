package hosts

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
)

// endpointKey identifies an endpoint: default ports and host case do not
// make two endpoints different.
func endpointKey(u *url.URL) string {
	h := strings.ToLower(u.Host)
	h = strings.TrimSuffix(h, map[string]string{"https": ":443", "http": ":80"}[u.Scheme])
	return u.Scheme + "://" + h + u.Path
}

// isProxy is containerd's rule for adding ?ns=: the endpoint is not the
// registry itself.
func isProxy(endpointHost, registry string) bool {
	if strings.EqualFold(endpointHost, registry) {
		return false
	}
	return !(registry == "docker.io" && strings.EqualFold(endpointHost, "registry-1.docker.io"))
}

// parseEndpointURL parses an endpoint as written in configuration. The
// scheme stays empty when none is written (see finalizeScheme). The path
// becomes the API root: "/v2" is appended unless it is already there or
// asRoot says the path is the root as written.
func parseEndpointURL(raw string, asRoot func(p string) bool) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "//" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("invalid URL %q: scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("invalid URL %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("invalid URL %q: credentials belong in registry.configs, not the URL", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("invalid URL %q: query and fragment are not supported", raw)
	}
	if err := validatePort(u.Port()); err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	p := strings.TrimSuffix(path.Clean("/"+u.Path), "/")
	if !strings.HasSuffix(p, "/v2") && (asRoot == nil || !asRoot(p)) {
		p += "/v2"
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: p}, nil
}

// isLoopback reports whether host[:port] names this machine.
func isLoopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validateHost accepts what the domain part of an image reference may be:
// DNS name or IP, optional port. Being strict here also keeps the host safe
// to use as a directory name under config_path.
func validateHost(host string) error {
	bad := func(why string) error { return fmt.Errorf("invalid registry host %q: %s", host, why) }
	if host == "" {
		return bad("empty")
	}
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		name, port = host[:i], host[i+1:]
		if err := validatePort(port); err != nil || port == "" {
			return bad("bad port")
		}
	}
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		if ip := net.ParseIP(name[1 : len(name)-1]); ip == nil || ip.To4() != nil {
			return bad("bad IPv6 address")
		}
		return nil
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("not a host name")
		}
		for _, c := range label {
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return bad("not a host name")
			}
		}
	}
	return nil
}

func validatePort(port string) error {
	if port == "" {
		return nil
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' || n > 65535 {
			return fmt.Errorf("bad port %q", port)
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
