// Package hosts resolves, for the registry host of an image reference
// ("docker.io", "registry.k8s.io", "127.0.0.1:5000"), the ordered list of
// endpoints a pull tries. It reads both forms of registry configuration that
// operators know from containerd and merges them:
//
//   - hosts.toml directories under registry.config_path, as specified by
//     containerd's docs/hosts.md: a directory per host namespace
//     ("docker.io", "127.0.0.1:5000" or "127.0.0.1_5000_"), falling back to
//     "_default"; and beside hosts.toml the certs.d files of docker
//     (*.crt CAs, *.cert/*.key client pairs), which apply to the upstream;
//   - the inline registry.mirrors and registry.configs tables.
//
// # Order
//
// The endpoints are: the [host."<url>"] tables of hosts.toml in file order,
// then the registry.mirrors endpoints, then the upstream last (the hosts.toml
// `server`, else https://<host>, for docker.io https://registry-1.docker.io).
// Two entries naming the same endpoint (same scheme, host, port and API path)
// are collapsed into one at the first position; when one of them comes from
// hosts.toml its settings win. Duplicates are a note, never an error:
// containerd rejecting a whole file for one duplicate has bitten users.
//
// # Wildcards
//
// `_default/hosts.toml` and `registry.mirrors."*"` apply only to a host with
// no specific configuration in either form (no directory of its own and no
// registry.mirrors entry of its own), so a specific entry is never silently
// extended by a catch-all; for other hosts both wildcards apply. As in
// containerd, a `server` in _default/hosts.toml redirects every such host
// (a pull-through proxy); its top-level settings apply to each upstream.
//
// # Settings
//
// Per endpoint, each setting comes from hosts.toml when it sets it, else from
// registry.configs keyed by the endpoint's host:port (so configs apply to
// mirrors too, as in containerd; "docker.io" is accepted for
// registry-1.docker.io), else the default. Credentials only exist inline.
// Top-level hosts.toml settings apply to the `server` only. hosts.toml
// entries default to all capabilities (containerd: an empty list too);
// inline mirrors get pull and resolve, as in containerd's CRI plugin. A pull
// resolves manifests on endpoints with [Resolve] and fetches blobs from those
// with [Pull]; see [Filter].
//
// # URLs and schemes
//
// An endpoint's URL path is its API root: "/v2" is appended unless the path
// already ends in "/v2" or override_path is set. Inline mirror paths that
// already contain a "v2" segment are taken as the API root, as containerd's
// legacy CRI code did. A URL without scheme gets https, except loopback
// hosts (localhost, 127.0.0.0/8, ::1), where containerd probes https and
// falls back to plain http; with a single URL per endpoint cri-rt decides
// up front: loopback without port or on 443 is https with verification off
// (unless CA or skip_verify is configured), on any other port plain http
// unless TLS is configured for it (CA, client certificate or skip_verify in
// either form), then https. TLS settings on an explicit http:// endpoint are
// ignored with a note.
//
// # Errors and reloads
//
// Broken configuration never fails a pull that could otherwise succeed: a
// malformed hosts.toml is ignored as a whole (syntax) or per entry (bad
// value, bad URL, unreadable CA or client certificate), with a klog warning
// naming file and line, and the upstream is always returned. Files are read
// on each call through a cache keyed by path, size and modification time, so
// operators may edit them without restarting and a lookup costs a few stat
// calls. Repeated warnings are logged at most once per five minutes.
package hosts

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/config"
)

// Capabilities is the set of operations an endpoint serves.
type Capabilities uint8

// Capabilities, as named in hosts.toml.
const (
	// Pull is fetching blobs (layers, configs) by digest.
	Pull Capabilities = 1 << iota
	// Resolve is turning a tag into a digest (manifest requests). Mirrors
	// usually must not resolve, as they may serve stale tags.
	Resolve
	// Push is uploading content.
	Push

	allCapabilities = Pull | Resolve | Push
)

// Has reports whether c includes all of o.
func (c Capabilities) Has(o Capabilities) bool { return c&o == o }

// String returns the names, e.g. "pull,resolve", or "none".
func (c Capabilities) String() string {
	var names []string
	for _, x := range []struct {
		c    Capabilities
		name string
	}{{Pull, "pull"}, {Resolve, "resolve"}, {Push, "push"}} {
		if c.Has(x.c) {
			names = append(names, x.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Endpoint is one place a pull may fetch from. Values are freshly built on
// each [Resolver.Endpoints] call and not shared, but treat them as read-only.
type Endpoint struct {
	// URL has scheme http or https, host[:port], and the API root as path:
	// "/v2" for an ordinary registry; requests go to URL.Path+"/<repo>/...".
	URL *url.URL
	// Capabilities of this endpoint; a pull skips endpoints lacking the one
	// it needs.
	Capabilities Capabilities
	// TLS is nil for http. A nil RootCAs means the system roots; with CA
	// files configured it holds the system roots plus those.
	TLS *tls.Config
	// Header is sent with every request to this endpoint (may be nil).
	Header http.Header
	// Auth comes from registry.configs for this endpoint's host; nil if none.
	Auth *config.AuthConfig
	// Namespace is the registry host the pull is for, set when the endpoint
	// is on another host (a mirror or a redirected server), so the HTTP layer
	// adds ?ns=<Namespace> as containerd does. Empty when the endpoint is the
	// registry itself (registry-1.docker.io counts as docker.io).
	Namespace string
	// Mirror is true for everything but the upstream (the server) entry.
	Mirror bool
	// Source names where the endpoint was configured: a hosts.toml path, a
	// host directory (certificate files only), "registry.mirrors.\"<host>\"",
	// or "default".
	Source string
	// DialTimeout bounds connecting; zero means the HTTP layer's default.
	DialTimeout time.Duration
}

// Filter returns the endpoints having capability c, in order.
func Filter(eps []Endpoint, c Capabilities) []Endpoint {
	var out []Endpoint
	for _, ep := range eps {
		if ep.Capabilities.Has(c) {
			out = append(out, ep)
		}
	}
	return out
}

// Resolver answers endpoint lookups from one RegistryConfig. It is cheap to
// build, safe for concurrent use, and rereads changed files by itself.
type Resolver struct {
	configPath string
	mirrors    map[string]config.MirrorConfig
	configs    map[string]config.RegistryHostConfig
	files      fileCache
	log        limiter
}

// New returns a Resolver for cfg. It reads no files: a missing or broken
// config_path shows up, as warnings, on lookups.
func New(cfg config.RegistryConfig) *Resolver {
	r := &Resolver{
		configPath: cfg.ConfigPath,
		mirrors:    make(map[string]config.MirrorConfig, len(cfg.Mirrors)),
		configs:    make(map[string]config.RegistryHostConfig, len(cfg.Configs)),
	}
	// Copy so that a caller mutating its config cannot race with lookups.
	for h, m := range cfg.Mirrors {
		r.mirrors[h] = config.MirrorConfig{Endpoints: append([]string(nil), m.Endpoints...)}
	}
	for h, c := range cfg.Configs {
		var cc config.RegistryHostConfig
		if c.TLS != nil {
			t := *c.TLS
			cc.TLS = &t
		}
		if c.Auth != nil {
			a := *c.Auth
			cc.Auth = &a
		}
		r.configs[h] = cc
	}
	return r
}

// Endpoints returns the endpoints to try for registry host (host[:port], as
// in an image reference), mirrors first and the upstream last. The list is
// never empty. The only error is an invalid host name; configuration
// problems are logged and the affected entries skipped.
func (r *Resolver) Endpoints(host string) ([]Endpoint, error) {
	res, err := r.resolve(host)
	if err != nil {
		return nil, err
	}
	for _, w := range res.warnings {
		r.log.warn(w)
	}
	if klog.V(2).Enabled() {
		for _, n := range res.notes {
			klog.V(2).InfoS("registry hosts", "host", host, "note", n)
		}
	}
	return res.endpoints, nil
}

// spec is an endpoint as configured, before its TLS material is loaded.
type spec struct {
	url         *url.URL // Scheme "" until finalize picks the default
	caps        Capabilities
	skipVerify  *bool
	caFiles     []string
	clientPairs [][2]string // [1] == "": the key is in the certificate file
	header      http.Header
	dialTimeout time.Duration
	auth        *config.AuthConfig
	source      string
	fromFile    bool     // hosts.toml or certificate files: wins on duplicates
	upstream    bool     // the server entry
	origins     []string // where settings came from, for Describe
}

// clone deep-copies what later steps mutate, because specs parsed from a
// hosts.toml are cached and shared between lookups.
func (s spec) clone() spec {
	if s.url != nil {
		u := *s.url
		s.url = &u
	}
	s.caFiles = append([]string(nil), s.caFiles...)
	s.clientPairs = append([][2]string(nil), s.clientPairs...)
	s.header = s.header.Clone()
	s.origins = append([]string(nil), s.origins...)
	return s
}

// tlsConfigured reports whether the configuration asks for TLS settings,
// which for loopback hosts also selects https over http.
func (s *spec) tlsConfigured() bool {
	return s.skipVerify != nil || len(s.caFiles) > 0 || len(s.clientPairs) > 0
}

// resolution is the result of one lookup, with what Describe shows.
type resolution struct {
	host      string
	dir       string // host directory used, "" if none
	endpoints []Endpoint
	specs     []spec // parallel to endpoints
	warnings  []string
	notes     []string
}

func (res *resolution) warnf(format string, args ...any) {
	res.warnings = append(res.warnings, fmt.Sprintf(format, args...))
}

func (res *resolution) notef(format string, args ...any) {
	res.notes = append(res.notes, fmt.Sprintf(format, args...))
}

func (r *Resolver) resolve(host string) (*resolution, error) {
	if err := validateHost(host); err != nil {
		return nil, err
	}
	res := &resolution{host: host}

	dir, own := r.hostDir(host, res)
	_, ownInline := r.mirrors[host]
	var hf *hostDirConfig
	if dir != "" && (own || !ownInline) {
		res.dir = dir
		hf = r.loadHostDir(dir, res)
	}

	var specs []spec
	if hf != nil {
		for _, m := range hf.mirrors {
			specs = append(specs, m.clone())
		}
	}
	specs = append(specs, r.inlineMirrors(host, own, res)...)
	specs = append(specs, upstream(host, hf))

	for i := range specs {
		r.applyConfigs(&specs[i], res)
		finalizeScheme(&specs[i], res)
	}
	specs = dedupe(specs, res)

	for _, s := range specs {
		ep, ok := r.build(s, host, res)
		if !ok {
			continue
		}
		res.endpoints = append(res.endpoints, ep)
		res.specs = append(res.specs, s)
	}
	return res, nil
}

// upstream returns the server entry: hosts.toml's (with its top-level
// settings and certificate files) or the default one.
func upstream(host string, hf *hostDirConfig) spec {
	s := spec{caps: allCapabilities, source: "default"}
	if hf != nil {
		s = hf.server.clone()
	}
	s.upstream = true
	if s.url == nil {
		if host == "docker.io" {
			// Docker Hub's API does not live on its reference name.
			s.url = &url.URL{Scheme: "https", Host: "registry-1.docker.io", Path: "/v2"}
		} else {
			s.url = &url.URL{Host: host, Path: "/v2"}
		}
	}
	return s
}

// finalizeScheme picks the scheme of a URL written without one, after all
// settings are known because TLS settings select https on loopback hosts.
func finalizeScheme(s *spec, res *resolution) {
	if s.url.Scheme != "" {
		return
	}
	s.url.Scheme = "https"
	if !isLoopback(s.url.Host) {
		return
	}
	_, port, _ := net.SplitHostPort(s.url.Host)
	switch {
	case port == "" || port == "443":
		if !s.tlsConfigured() {
			// containerd does not verify loopback certificates either:
			// they are almost always self-signed test setups.
			t := true
			s.skipVerify = &t
			s.origins = append(s.origins, "skip_verify: loopback default")
		}
	case port == "80" || !s.tlsConfigured():
		s.url.Scheme = "http"
		res.notef("%s: loopback host without TLS settings, using plain http", s.url.Host)
	}
}

// dedupe collapses entries naming the same endpoint into the first
// position. The settings of a hosts.toml entry win over an inline one;
// between equals the first wins.
func dedupe(specs []spec, res *resolution) []spec {
	out := make([]spec, 0, len(specs))
	at := make(map[string]int, len(specs))
	for _, s := range specs {
		k := endpointKey(s.url)
		i, dup := at[k]
		if !dup {
			at[k] = len(out)
			out = append(out, s)
			continue
		}
		kept := out[i]
		res.notef("%s listed again by %s; merged with the entry from %s", s.url, s.source, kept.source)
		if s.fromFile && !kept.fromFile {
			kept, s = s, kept
		}
		kept.upstream = kept.upstream || s.upstream
		if kept.auth == nil {
			kept.auth = s.auth
		}
		out[i] = kept
	}
	return out
}

// build turns a spec into an Endpoint, loading TLS material. A mirror whose
// material cannot be loaded is dropped, since it would fail anyway; the
// upstream is kept without the broken part so a pull can still report the
// real TLS error.
func (r *Resolver) build(s spec, host string, res *resolution) (Endpoint, bool) {
	u := *s.url
	ep := Endpoint{
		URL:          &u,
		Capabilities: s.caps,
		Header:       s.header.Clone(),
		Mirror:       !s.upstream,
		Source:       s.source,
		DialTimeout:  s.dialTimeout,
	}
	if s.auth != nil {
		a := *s.auth
		ep.Auth = &a
	}
	if isProxy(u.Host, host) {
		ep.Namespace = host
	}
	if u.Scheme == "http" {
		if s.tlsConfigured() {
			res.notef("%s: TLS settings ignored for a plain http endpoint", &u)
		}
		return ep, true
	}
	cfg, errs := r.tlsConfig(&s)
	if len(errs) > 0 && !s.upstream {
		for _, err := range errs {
			res.warnf("%s (from %s) skipped: %v", &u, s.source, err)
		}
		return Endpoint{}, false
	}
	for _, err := range errs {
		res.warnf("%s (from %s): %v; continuing without it", &u, s.source, err)
	}
	ep.TLS = cfg
	return ep, true
}

// limiter logs each distinct warning at most once per period: lookups run
// for every pull, and a broken file must not flood the log.
type limiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const warnPeriod = 5 * time.Minute

func (l *limiter) warn(msg string) {
	now := time.Now()
	l.mu.Lock()
	if t, ok := l.last[msg]; ok && now.Sub(t) < warnPeriod {
		l.mu.Unlock()
		return
	}
	if l.last == nil || len(l.last) > 1000 {
		// Bounded: messages embed paths and URLs an operator may churn.
		l.last = make(map[string]time.Time)
	}
	l.last[msg] = now
	l.mu.Unlock()
	klog.Warning("registry hosts: " + msg)
}
