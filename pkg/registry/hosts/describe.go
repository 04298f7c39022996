package hosts

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/cri-rt/cri-rt/pkg/config"
)

// RegistryHost returns the registry host of an image reference, following
// the docker reference rules: the first path component when it looks like
// a host (has a "." or ":", or is "localhost"), else docker.io
// ("nginx:alpine" and "library/nginx" are on docker.io). A bare host such as
// "docker.io", "127.0.0.1:5000" or "[::1]:5000" is returned as is, so the
// CLI accepts both forms; "name:tag" without a slash stays an image unless
// the name has a dot or is localhost or an IP.
func RegistryHost(ref string) string {
	ref = strings.TrimSpace(ref)
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	first, _, hasSlash := strings.Cut(ref, "/")
	if hasSlash {
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			return first
		}
		return "docker.io"
	}
	name, port := first, ""
	if i := strings.LastIndexByte(first, ':'); i >= 0 && !strings.HasSuffix(first, "]") {
		name, port = first[:i], first[i+1:]
	}
	if port != "" && validatePort(port) != nil {
		return "docker.io" // a tag, not a port
	}
	trimmed := strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if strings.Contains(name, ".") || name == "localhost" || net.ParseIP(trimmed) != nil {
		return first
	}
	return "docker.io"
}

// Describe writes, for an image reference or a registry host, the endpoints
// a pull tries, in order, with capabilities, TLS, headers and credentials,
// and where each setting came from; then any configuration warnings.
// Secrets are masked: passwords, auth strings, identity tokens and values of
// headers whose name suggests a credential print as "***". This backs
// `cri-rt hosts <reference>`.
func (r *Resolver) Describe(w io.Writer, ref string) error {
	host := RegistryHost(ref)
	res, err := r.resolve(host)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "registry %s\n", host)
	if res.dir != "" {
		fmt.Fprintf(&b, "host directory: %s\n", res.dir)
	} else if r.configPath != "" {
		fmt.Fprintf(&b, "host directory: none under %s\n", r.configPath)
	}
	for i, ep := range res.endpoints {
		s := res.specs[i]
		role := "upstream"
		if ep.Mirror {
			role = "mirror"
		}
		use := ""
		if !ep.Capabilities.Has(Pull) && !ep.Capabilities.Has(Resolve) {
			use = " (not used for pulls)"
		}
		fmt.Fprintf(&b, "%d. %s  %s  capabilities=%s%s\n", i+1, ep.URL, role, ep.Capabilities, use)
		fmt.Fprintf(&b, "   source: %s\n", ep.Source)
		if ep.Namespace != "" {
			fmt.Fprintf(&b, "   query: ns=%s\n", ep.Namespace)
		}
		fmt.Fprintf(&b, "   tls: %s\n", describeTLS(ep, s))
		for _, k := range sortedKeys(ep.Header) {
			for _, v := range ep.Header[k] {
				fmt.Fprintf(&b, "   header: %s: %s\n", k, maskHeader(k, v))
			}
		}
		if ep.Auth != nil {
			fmt.Fprintf(&b, "   auth: %s\n", describeAuth(ep.Auth))
		}
		if ep.DialTimeout > 0 {
			fmt.Fprintf(&b, "   dial_timeout: %s\n", ep.DialTimeout)
		}
		for _, o := range s.origins {
			fmt.Fprintf(&b, "   from: %s\n", o)
		}
	}
	for _, wmsg := range res.warnings {
		fmt.Fprintf(&b, "warning: %s\n", wmsg)
	}
	for _, n := range res.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func describeTLS(ep Endpoint, s spec) string {
	if ep.TLS == nil {
		return "none (plain http)"
	}
	var parts []string
	if ep.TLS.InsecureSkipVerify {
		parts = append(parts, "verify=OFF (skip_verify)")
	} else {
		parts = append(parts, "verify=on")
	}
	if len(s.caFiles) > 0 {
		parts = append(parts, "ca=system+"+strings.Join(s.caFiles, ","))
	} else {
		parts = append(parts, "ca=system")
	}
	for _, p := range s.clientPairs {
		c := "client=" + p[0]
		if p[1] != "" {
			c += "+" + p[1]
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, " ")
}

// describeAuth shows which credentials are set, never their secret parts.
// The user name of an `auth` string is shown as it identifies the account.
func describeAuth(a *config.AuthConfig) string {
	var parts []string
	if a.Username != "" {
		parts = append(parts, "username="+a.Username)
	}
	if a.Password != "" {
		parts = append(parts, "password=***")
	}
	if a.Auth != "" {
		user := "?"
		if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
			if u, _, ok := strings.Cut(string(dec), ":"); ok {
				user = u
			}
		}
		parts = append(parts, "auth=*** (username "+user+")")
	}
	if a.IdentityToken != "" {
		parts = append(parts, "identitytoken=***")
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, " ")
}

// maskHeader hides values of headers that carry credentials, judged by
// name since hosts.toml headers are free-form.
func maskHeader(name, value string) string {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "token", "secret", "password", "cookie", "key", "session", "credential"} {
		if strings.Contains(n, s) {
			return "***"
		}
	}
	return value
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
