package hosts

import (
	"strconv"
	"strings"
)

// wildcard is the registry.mirrors key that applies to any registry.
const wildcard = "*"

// inlineMirrors returns the registry.mirrors endpoints for host: its own
// entry, else the "*" entry, unless the host has a directory of its own
// (a specific configuration is never extended by a catch-all).
func (r *Resolver) inlineMirrors(host string, ownDir bool, res *resolution) []spec {
	key := host
	m, ok := r.mirrors[host]
	if !ok {
		if ownDir {
			return nil
		}
		key = wildcard
		if m, ok = r.mirrors[wildcard]; !ok {
			return nil
		}
	}
	source := "registry.mirrors." + strconv.Quote(key)
	var specs []spec
	for _, raw := range m.Endpoints {
		u, err := parseEndpointURL(raw, legacyAPIRoot)
		if err != nil {
			res.warnf("%s: %v; endpoint skipped", source, err)
			continue
		}
		specs = append(specs, spec{
			url: u,
			// containerd's CRI plugin gives inline mirrors these two only.
			caps:   Pull | Resolve,
			source: source,
		})
	}
	return specs
}

// legacyAPIRoot keeps a path that already contains a "v2" segment, such
// as "/v2/dockerhub-proxy", as the API root: containerd's CRI plugin used
// inline mirror paths as written, and such configurations exist.
func legacyAPIRoot(p string) bool {
	return strings.Contains(p+"/", "/v2/")
}

// applyConfigs fills the settings hosts.toml left unset from
// registry.configs of the endpoint's host:port. Values hosts.toml set win.
// Unlike hosts.toml paths, relative file names here have no directory to
// be relative to, so they are used as given (operators write absolute ones).
func (r *Resolver) applyConfigs(s *spec, res *resolution) {
	key := s.url.Host
	hc, ok := r.configs[key]
	if !ok && strings.EqualFold(key, "registry-1.docker.io") {
		// containerd only matched "registry-1.docker.io", a classic trap;
		// the registry's own name is what operators write.
		key = "docker.io"
		hc, ok = r.configs[key]
	}
	if !ok {
		return
	}
	source := "registry.configs." + strconv.Quote(key)
	ignored := func(what string) {
		res.notef("%s: %s of %s ignored, hosts.toml sets it", s.url, what, source)
	}
	if t := hc.TLS; t != nil {
		if t.InsecureSkipVerify {
			if s.skipVerify == nil {
				v := true
				s.skipVerify = &v
				s.origins = append(s.origins, "skip_verify: "+source)
			} else if !*s.skipVerify {
				ignored("insecure_skip_verify")
			}
		}
		if t.CAFile != "" {
			if len(s.caFiles) == 0 {
				s.caFiles = []string{t.CAFile}
				s.origins = append(s.origins, "ca: "+source)
			} else {
				ignored("ca_file")
			}
		}
		if t.CertFile != "" {
			if len(s.clientPairs) == 0 {
				s.clientPairs = [][2]string{{t.CertFile, t.KeyFile}}
				s.origins = append(s.origins, "client: "+source)
			} else {
				ignored("cert_file")
			}
		}
	}
	if hc.Auth != nil && s.auth == nil {
		a := *hc.Auth
		s.auth = &a
		s.origins = append(s.origins, "auth: "+source)
	}
}
