package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// hostsFileName is the file read in a host directory.
const hostsFileName = "hosts.toml"

// defaultDirName is the host directory used by hosts without their own.
const defaultDirName = "_default"

// hostDirConfig is what a host directory configures.
type hostDirConfig struct {
	// server is the upstream entry: the top-level settings plus the
	// certificate files of the directory; url is nil when `server` is not
	// set (or invalid), meaning the default upstream.
	server   spec
	mirrors  []spec // the [host."<url>"] entries, in file order
	warnings []string
}

// hostDir finds the directory configuring host, as containerd does:
// "<host>_<port>_" (a name valid on every filesystem), then "<host:port>",
// then "_default". own is false for "_default".
func (r *Resolver) hostDir(host string, res *resolution) (dir string, own bool) {
	if r.configPath == "" {
		return "", false
	}
	var names []string
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		names = append(names, host[:i]+"_"+host[i+1:]+"_")
	}
	names = append(names, host, defaultDirName)
	for _, name := range names {
		p := filepath.Join(r.configPath, name)
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return p, name != defaultDirName
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			res.warnf("%v; skipped", err)
		}
	}
	return "", false
}

// loadHostDir reads dir's hosts.toml (cached until it changes) and picks up
// its certificate files (listed on every call, cheaply, so added files are
// seen at once).
func (r *Resolver) loadHostDir(dir string, res *resolution) *hostDirConfig {
	file := filepath.Join(dir, hostsFileName)
	v, err := r.files.get("hosts", []string{file}, func(data [][]byte) (any, error) {
		return parseHostsFile(dir, file, data[0]), nil
	})
	var hd hostDirConfig
	switch {
	case err == nil:
		hd = *v.(*hostDirConfig)
		res.warnings = append(res.warnings, hd.warnings...)
	case errors.Is(err, fs.ErrNotExist):
		// A directory with certificate files only, docker's certs.d layout.
		hd.server = spec{caps: allCapabilities, source: dir, fromFile: true}
	default:
		res.warnf("%v; ignored, using the default upstream", err)
		hd.server = spec{caps: allCapabilities, source: dir, fromFile: true}
	}
	hd.server = hd.server.clone()
	cas, pairs, err := certFiles(dir)
	if err != nil {
		res.warnf("%v", err)
	}
	for _, f := range cas {
		if !slices.Contains(hd.server.caFiles, f) {
			hd.server.caFiles = append(hd.server.caFiles, f)
			hd.server.origins = append(hd.server.origins, "ca: "+f+" (certificate file)")
		}
	}
	for _, p := range pairs {
		if !slices.Contains(hd.server.clientPairs, p) {
			hd.server.clientPairs = append(hd.server.clientPairs, p)
			hd.server.origins = append(hd.server.origins, "client: "+p[0]+" (certificate file)")
		}
	}
	return &hd
}

// certFiles lists docker's certs.d files: *.crt are CAs, *.cert client
// certificates with the key in the matching *.key (or, if there is none,
// in the *.cert itself, as containerd allows).
func certFiles(dir string) (cas []string, pairs [][2]string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries { // sorted by name: a stable order
		name := e.Name()
		if e.IsDir() {
			continue
		}
		switch filepath.Ext(name) {
		case ".crt":
			cas = append(cas, filepath.Join(dir, name))
		case ".cert":
			pair := [2]string{filepath.Join(dir, name), ""}
			key := filepath.Join(dir, strings.TrimSuffix(name, ".cert")+".key")
			if _, err := os.Stat(key); err == nil {
				pair[1] = key
			}
			pairs = append(pairs, pair)
		}
	}
	return cas, pairs, nil
}

// parseHostsFile interprets one hosts.toml. It never fails: a syntax error
// drops the file, a bad [host] entry drops that entry, a bad top-level
// setting drops that setting; each with a warning naming file and line.
func parseHostsFile(dir, file string, data []byte) *hostDirConfig {
	hd := &hostDirConfig{server: spec{caps: allCapabilities, source: file, fromFile: true}}
	warn := func(format string, args ...any) {
		hd.warnings = append(hd.warnings, file+": "+fmt.Sprintf(format, args...))
	}
	root, warnings, err := parseTOML(data)
	if err != nil {
		warn("%v; file ignored, using the default upstream", err)
		return hd
	}
	for _, w := range warnings {
		warn("%s", w)
	}

	// Top level: settings of the server. A bad one is dropped alone since
	// the server entry itself cannot be dropped.
	overridePath, errs, unknown := readSettings(root, dir, &hd.server, "server", "host")
	for _, e := range append(errs, unknown...) {
		warn("%s; ignored", e)
	}
	if v, line := root.get("server"); v != nil {
		s, ok := v.(string)
		u, err := parseEndpointURL(s, func(string) bool { return overridePath })
		switch {
		case !ok:
			warn("line %d: server must be a string, not %s; using the default upstream", line, typeName(v))
		case err != nil:
			warn("line %d: server: %v; using the default upstream", line, err)
		default:
			hd.server.url = u
		}
	}

	hv, line := root.get("host")
	if hv == nil {
		return hd
	}
	hosts, ok := hv.(*tomlTable)
	if !ok {
		warn("line %d: host must be a table of [host.\"<url>\"] entries, not %s; ignored", line, typeName(hv))
		return hd
	}
	for _, name := range hosts.keys {
		v, line := hosts.get(name)
		t, ok := v.(*tomlTable)
		if !ok {
			warn("line %d: host.%q must be a table, not %s; entry skipped", line, name, typeName(v))
			continue
		}
		s := spec{caps: allCapabilities, source: file, fromFile: true}
		overridePath, errs, unknown := readSettings(t, dir, &s)
		for _, u := range unknown {
			warn("%s; ignored", u)
		}
		u, err := parseEndpointURL(name, func(string) bool { return overridePath })
		if err != nil {
			errs = append(errs, err.Error())
		}
		if len(errs) > 0 {
			warn("line %d: [host.%q] skipped: %s", line, name, strings.Join(errs, "; "))
			continue
		}
		s.url = u
		hd.mirrors = append(hd.mirrors, s)
	}
	return hd
}

// readSettings reads the per-endpoint keys of a hosts.toml table into s and
// returns override_path (it shapes the URL) and one message per bad key.
// Unknown keys are reported apart, as they do not make an entry unusable,
// but a typo such as skip-verify would otherwise silently do nothing.
// extra names keys the caller handles.
func readSettings(t *tomlTable, dir string, s *spec, extra ...string) (overridePath bool, errs, unknown []string) {
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: %s: %s", t.lines[key], key, fmt.Sprintf(format, args...)))
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, key := range t.keys {
		v := t.values[key]
		switch key {
		case "capabilities":
			list, ok := stringList(v, false)
			if !ok {
				bad(key, "must be an array of strings, not %s", typeName(v))
				continue
			}
			caps, err := parseCapabilities(list)
			if err != nil {
				bad(key, "%v", err)
				continue
			}
			s.caps = caps
		case "skip_verify":
			b, ok := v.(bool)
			if !ok {
				bad(key, "must be a boolean, not %s", typeName(v))
				continue
			}
			s.skipVerify = &b
			s.origins = append(s.origins, fmt.Sprintf("skip_verify: %s line %d", hostsFileName, t.lines[key]))
		case "ca":
			list, ok := stringList(v, true)
			if !ok {
				bad(key, "must be a path or an array of paths, not %s", typeName(v))
				continue
			}
			for _, p := range list {
				s.caFiles = append(s.caFiles, abs(p))
			}
			s.origins = append(s.origins, fmt.Sprintf("ca: %s line %d", hostsFileName, t.lines[key]))
		case "client":
			pairs, err := clientPairs(v)
			if err != nil {
				bad(key, "%v", err)
				continue
			}
			for _, p := range pairs {
				s.clientPairs = append(s.clientPairs, [2]string{abs(p[0]), abs(p[1])})
			}
			s.origins = append(s.origins, fmt.Sprintf("client: %s line %d", hostsFileName, t.lines[key]))
		case "header":
			h, err := parseHeader(v)
			if err != nil {
				bad(key, "%v", err)
				continue
			}
			s.header = h
		case "override_path":
			b, ok := v.(bool)
			if !ok {
				bad(key, "must be a boolean, not %s", typeName(v))
				continue
			}
			overridePath = b
		case "dial_timeout":
			str, ok := v.(string)
			d, err := time.ParseDuration(str)
			if !ok || err != nil || d < 0 {
				bad(key, "must be a duration string such as \"5s\"")
				continue
			}
			s.dialTimeout = d
		default:
			if !slices.Contains(extra, key) {
				unknown = append(unknown, fmt.Sprintf("line %d: unknown key %q", t.lines[key], key))
			}
		}
	}
	return overridePath, errs, unknown
}

// parseCapabilities reads a capabilities list. An empty list means all, as
// in containerd, where only a non-empty list restricts.
func parseCapabilities(list []string) (Capabilities, error) {
	if len(list) == 0 {
		return allCapabilities, nil
	}
	var c Capabilities
	for _, name := range list {
		switch strings.ToLower(name) {
		case "pull":
			c |= Pull
		case "resolve":
			c |= Resolve
		case "push":
			c |= Push
		default:
			return 0, fmt.Errorf("unknown capability %q (want pull, resolve, push)", name)
		}
	}
	return c, nil
}

// stringList accepts an array of strings, and a lone string if single is set.
func stringList(v any, single bool) ([]string, bool) {
	if s, ok := v.(string); ok && single {
		return []string{s}, true
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// clientPairs reads `client`: "both.pem", ["a.pem", "b.pem"] (files holding
// certificate and key each) or [["cert.pem", "key.pem"], ...].
func clientPairs(v any) ([][2]string, error) {
	if s, ok := v.(string); ok {
		return [][2]string{{s, ""}}, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a path, an array of paths or of [cert, key] pairs, not %s", typeName(v))
	}
	var out [][2]string
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, [2]string{s, ""})
			continue
		}
		pair, ok := stringList(e, false)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("entries must be paths or [cert, key] pairs")
		}
		out = append(out, [2]string{pair[0], pair[1]})
	}
	return out, nil
}

// parseHeader reads `header`: a table of a string or an array of strings.
func parseHeader(v any) (http.Header, error) {
	t, ok := v.(*tomlTable)
	if !ok {
		return nil, fmt.Errorf("must be a table, not %s", typeName(v))
	}
	h := http.Header{}
	for _, k := range t.keys {
		vals, ok := stringList(t.values[k], true)
		if !ok {
			return nil, fmt.Errorf("%q must be a string or an array of strings", k)
		}
		for _, val := range vals {
			h.Add(k, val)
		}
	}
	return h, nil
}
