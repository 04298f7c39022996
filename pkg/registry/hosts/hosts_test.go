package hosts

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cri-rt/cri-rt/pkg/config"
)

func TestEndpoints(t *testing.T) {
	const hub = "https://registry-1.docker.io/v2 pull,resolve,push upstream"
	tests := []struct {
		name     string
		files    map[string]string // under config_path
		mirrors  map[string]config.MirrorConfig
		configs  map[string]config.RegistryHostConfig
		host     string
		want     []string
		warnings []string // substrings expected among the warnings
		check    func(t *testing.T, eps []Endpoint)
	}{
		{
			name: "no config docker.io",
			host: "docker.io",
			want: []string{hub},
		},
		{
			name: "no config other registry",
			host: "registry.k8s.io",
			want: []string{"https://registry.k8s.io/v2 pull,resolve,push upstream"},
		},
		{
			name: "no config IP without port is https",
			host: "192.168.0.2",
			want: []string{"https://192.168.0.2/v2 pull,resolve,push upstream"},
		},
		{
			name: "loopback with port defaults to plain http",
			host: "127.0.0.1:5000",
			want: []string{"http://127.0.0.1:5000/v2 pull,resolve,push upstream"},
			check: func(t *testing.T, eps []Endpoint) {
				if eps[0].TLS != nil {
					t.Error("TLS config on an http endpoint")
				}
			},
		},
		{
			name: "localhost without port is https without verification",
			host: "localhost",
			want: []string{"https://localhost/v2 pull,resolve,push upstream"},
			check: func(t *testing.T, eps []Endpoint) {
				if eps[0].TLS == nil || !eps[0].TLS.InsecureSkipVerify {
					t.Error("want skip verify for localhost")
				}
			},
		},
		{
			name: "loopback with TLS configured is https",
			host: "127.0.0.1:5000",
			configs: map[string]config.RegistryHostConfig{
				"127.0.0.1:5000": {TLS: &config.TLSConfig{InsecureSkipVerify: true}},
			},
			want: []string{"https://127.0.0.1:5000/v2 pull,resolve,push upstream"},
		},
		{
			name: "host tables keep file order",
			files: map[string]string{"docker.io/hosts.toml": `
server = "https://registry-1.docker.io"

[host."https://zeta.example"]
  capabilities = ["pull", "resolve"]
[host."https://zeta.example".header]
  x-a = "1"

[host."https://alpha.example"]
  capabilities = ["pull"]

[host."https://mid.example"]
  capabilities = ["pull", "resolve"]
`},
			host: "docker.io",
			want: []string{
				"https://zeta.example/v2 pull,resolve mirror ns=docker.io",
				"https://alpha.example/v2 pull mirror ns=docker.io",
				"https://mid.example/v2 pull,resolve mirror ns=docker.io",
				hub,
			},
			check: func(t *testing.T, eps []Endpoint) {
				if got := eps[0].Header.Get("X-A"); got != "1" {
					t.Errorf("header of zeta = %q", got)
				}
				if eps[0].Source != "" && !strings.HasSuffix(eps[0].Source, "docker.io/hosts.toml") {
					t.Errorf("source = %q", eps[0].Source)
				}
			},
		},
		{
			name: "_default for hosts without a directory",
			files: map[string]string{
				"_default/hosts.toml":  "[host.\"https://catchall.example\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
				"docker.io/hosts.toml": "[host.\"https://hub-mirror.example\"]\n",
			},
			host: "quay.io",
			want: []string{
				"https://catchall.example/v2 pull,resolve mirror ns=quay.io",
				"https://quay.io/v2 pull,resolve,push upstream",
			},
		},
		{
			name: "own directory beats _default",
			files: map[string]string{
				"_default/hosts.toml":  "[host.\"https://catchall.example\"]\n",
				"docker.io/hosts.toml": "[host.\"https://hub-mirror.example\"]\n",
			},
			host: "docker.io",
			want: []string{"https://hub-mirror.example/v2 pull,resolve,push mirror ns=docker.io", hub},
		},
		{
			name:  "host_port_ directory name",
			files: map[string]string{"127.0.0.1_5000_/hosts.toml": "server = \"https://127.0.0.1:5000\"\nskip_verify = true\n"},
			host:  "127.0.0.1:5000",
			want:  []string{"https://127.0.0.1:5000/v2 pull,resolve,push upstream"},
		},
		{
			name:  "host:port directory name",
			files: map[string]string{"registry.example:5000/hosts.toml": "server = \"http://registry.example:5000\"\n"},
			host:  "registry.example:5000",
			want:  []string{"http://registry.example:5000/v2 pull,resolve,push upstream"},
		},
		{
			name: "server and capabilities",
			files: map[string]string{"registry.example/hosts.toml": `
server = "https://upstream.example:8443/base"
capabilities = ["push"]

[host."http://pull-only.example:5000"]
  capabilities = ["pull"]
`},
			host: "registry.example",
			want: []string{
				"http://pull-only.example:5000/v2 pull mirror ns=registry.example",
				// A redirected server is on another host: ns, as containerd.
				"https://upstream.example:8443/base/v2 push upstream ns=registry.example",
			},
			check: func(t *testing.T, eps []Endpoint) {
				if got := Filter(eps, Pull); len(got) != 1 || got[0].URL.Host != "pull-only.example:5000" {
					t.Errorf("Filter(Pull) = %v", summary(got))
				}
			},
		},
		{
			name: "override_path",
			files: map[string]string{"docker.io/hosts.toml": `
[host."https://x.example/custom/api"]
  override_path = true
[host."https://y.example/custom/api"]
[host."https://z.example/prefix/v2/"]
`},
			host: "docker.io",
			want: []string{
				"https://x.example/custom/api pull,resolve,push mirror ns=docker.io",
				"https://y.example/custom/api/v2 pull,resolve,push mirror ns=docker.io",
				"https://z.example/prefix/v2 pull,resolve,push mirror ns=docker.io",
				hub,
			},
		},
		{
			name: "skip_verify, header lists, dial_timeout",
			files: map[string]string{"docker.io/hosts.toml": `
[host."https://m.example"]
  skip_verify = true
  dial_timeout = "3s"
  header = { x-single = "a", x-multi = ["b", "c"] }
`},
			host: "docker.io",
			want: []string{"https://m.example/v2 pull,resolve,push mirror ns=docker.io", hub},
			check: func(t *testing.T, eps []Endpoint) {
				ep := eps[0]
				if ep.TLS == nil || !ep.TLS.InsecureSkipVerify {
					t.Error("skip_verify not applied")
				}
				if ep.DialTimeout != 3*time.Second {
					t.Errorf("dial timeout %v", ep.DialTimeout)
				}
				want := http.Header{"X-Single": {"a"}, "X-Multi": {"b", "c"}}
				if !equalHeader(ep.Header, want) {
					t.Errorf("header %v, want %v", ep.Header, want)
				}
				if eps[1].TLS == nil || eps[1].TLS.InsecureSkipVerify {
					t.Error("upstream must verify")
				}
			},
		},
		{
			name:     "syntax error: file ignored, upstream still returned",
			files:    map[string]string{"docker.io/hosts.toml": "[host.\"https://m.example\"\ncapabilities = [\"pull\"]\n"},
			host:     "docker.io",
			want:     []string{hub},
			warnings: []string{"docker.io/hosts.toml: line 1", "file ignored"},
		},
		{
			name: "bad entries skipped, good ones kept",
			files: map[string]string{"docker.io/hosts.toml": `
[host."ftp://bad-scheme.example"]
[host."https://bad-cap.example"]
  capabilities = ["pull", "fly"]
[host."https://missing-ca.example"]
  ca = "nope.pem"
[host."https://bad-type.example"]
  skip_verify = "yes"
[host."https://good.example"]
  capabilities = ["pull"]
`},
			host: "docker.io",
			want: []string{"https://good.example/v2 pull mirror ns=docker.io", hub},
			warnings: []string{
				`[host."ftp://bad-scheme.example"] skipped`,
				`unknown capability "fly"`,
				"missing-ca.example/v2 (from",
				"skip_verify: must be a boolean",
			},
		},
		{
			name: "duplicates are merged, not fatal",
			files: map[string]string{"docker.io/hosts.toml": `
[host."https://m.example"]
  capabilities = ["pull"]
[host."https://other.example"]
[host."https://m.example:443/"]
  capabilities = ["push"]
[host."https://M.example/v2"]
[host."https://registry-1.docker.io"]
  capabilities = ["pull", "resolve"]
`},
			host: "docker.io",
			want: []string{
				"https://m.example/v2 pull mirror ns=docker.io",
				"https://other.example/v2 pull,resolve,push mirror ns=docker.io",
				// The upstream listed as a host: one entry, first settings.
				"https://registry-1.docker.io/v2 pull,resolve upstream",
			},
		},
		{
			name: "same table twice is merged with a warning",
			files: map[string]string{"docker.io/hosts.toml": `
[host."https://m.example"]
  capabilities = ["pull"]
[host."https://n.example"]
[host."https://m.example"]
  capabilities = ["push"]
  skip_verify = true
`},
			host: "docker.io",
			want: []string{
				"https://m.example/v2 pull mirror ns=docker.io",
				"https://n.example/v2 pull,resolve,push mirror ns=docker.io",
				hub,
			},
			warnings: []string{`line 5: table [host."https://m.example"] given again`, "line 6: key capabilities already set on line 3"},
			check: func(t *testing.T, eps []Endpoint) {
				if !eps[0].TLS.InsecureSkipVerify {
					t.Error("keys of the repeated table are merged")
				}
			},
		},
		{
			name:    "inline mirrors after hosts.toml ones, deduplicated",
			files:   map[string]string{"docker.io/hosts.toml": "[host.\"https://a.example\"]\ncapabilities = [\"pull\", \"resolve\", \"push\"]\n"},
			mirrors: map[string]config.MirrorConfig{"docker.io": {Endpoints: []string{"https://b.example", "https://a.example/v2"}}},
			host:    "docker.io",
			want: []string{
				"https://a.example/v2 pull,resolve,push mirror ns=docker.io",
				"https://b.example/v2 pull,resolve mirror ns=docker.io",
				hub,
			},
			check: func(t *testing.T, eps []Endpoint) {
				if !strings.HasSuffix(eps[0].Source, "hosts.toml") {
					t.Errorf("merged entry source %q, want hosts.toml", eps[0].Source)
				}
				if eps[1].Source != `registry.mirrors."docker.io"` {
					t.Errorf("source %q", eps[1].Source)
				}
			},
		},
		{
			name: "hosts.toml wins per setting over registry.configs",
			files: map[string]string{"docker.io/hosts.toml": `
[host."https://a.example"]
  skip_verify = false
`},
			mirrors: map[string]config.MirrorConfig{"docker.io": {Endpoints: []string{"https://a.example"}}},
			configs: map[string]config.RegistryHostConfig{
				"a.example": {
					TLS:  &config.TLSConfig{InsecureSkipVerify: true},
					Auth: &config.AuthConfig{Username: "u", Password: "p"},
				},
			},
			host: "docker.io",
			want: []string{"https://a.example/v2 pull,resolve,push mirror ns=docker.io", hub},
			check: func(t *testing.T, eps []Endpoint) {
				if eps[0].TLS.InsecureSkipVerify {
					t.Error("hosts.toml skip_verify=false must win")
				}
				if eps[0].Auth == nil || eps[0].Auth.Username != "u" {
					t.Error("auth from registry.configs must still apply")
				}
			},
		},
		{
			name:    "registry.configs apply to mirror hosts",
			mirrors: map[string]config.MirrorConfig{"registry.k8s.io": {Endpoints: []string{"https://mirror.example:5000"}}},
			configs: map[string]config.RegistryHostConfig{
				"mirror.example:5000": {
					TLS:  &config.TLSConfig{InsecureSkipVerify: true},
					Auth: &config.AuthConfig{Username: "m", Password: "secret"},
				},
				"registry.k8s.io": {Auth: &config.AuthConfig{IdentityToken: "tok"}},
			},
			host: "registry.k8s.io",
			want: []string{
				"https://mirror.example:5000/v2 pull,resolve mirror ns=registry.k8s.io",
				"https://registry.k8s.io/v2 pull,resolve,push upstream",
			},
			check: func(t *testing.T, eps []Endpoint) {
				if !eps[0].TLS.InsecureSkipVerify || eps[0].Auth == nil || eps[0].Auth.Username != "m" {
					t.Errorf("mirror config not applied: %+v %+v", eps[0].TLS, eps[0].Auth)
				}
				if eps[1].TLS.InsecureSkipVerify || eps[1].Auth == nil || eps[1].Auth.IdentityToken != "tok" {
					t.Errorf("upstream config wrong: %+v", eps[1].Auth)
				}
			},
		},
		{
			name:    "docker.io configs key applies to registry-1.docker.io",
			configs: map[string]config.RegistryHostConfig{"docker.io": {Auth: &config.AuthConfig{Username: "hub"}}},
			host:    "docker.io",
			want:    []string{hub},
			check: func(t *testing.T, eps []Endpoint) {
				if eps[0].Auth == nil || eps[0].Auth.Username != "hub" {
					t.Error("docker.io auth not applied to registry-1.docker.io")
				}
			},
		},
		{
			name:    "wildcard mirror for any registry",
			mirrors: map[string]config.MirrorConfig{"*": {Endpoints: []string{"https://any.example"}}},
			host:    "ghcr.io",
			want: []string{
				"https://any.example/v2 pull,resolve mirror ns=ghcr.io",
				"https://ghcr.io/v2 pull,resolve,push upstream",
			},
			check: func(t *testing.T, eps []Endpoint) {
				if eps[0].Source != `registry.mirrors."*"` {
					t.Errorf("source %q", eps[0].Source)
				}
			},
		},
		{
			name: "specific inline mirror beats wildcard",
			mirrors: map[string]config.MirrorConfig{
				"*":         {Endpoints: []string{"https://any.example"}},
				"docker.io": {Endpoints: []string{"https://hub.example"}},
			},
			host: "docker.io",
			want: []string{"https://hub.example/v2 pull,resolve mirror ns=docker.io", hub},
		},
		{
			name:    "own host directory beats wildcard",
			files:   map[string]string{"docker.io/hosts.toml": "server = \"https://registry-1.docker.io\"\n"},
			mirrors: map[string]config.MirrorConfig{"*": {Endpoints: []string{"https://any.example"}}},
			host:    "docker.io",
			want:    []string{hub},
		},
		{
			name:    "specific inline mirror beats _default",
			files:   map[string]string{"_default/hosts.toml": "[host.\"https://catchall.example\"]\n"},
			mirrors: map[string]config.MirrorConfig{"quay.io": {Endpoints: []string{"https://q.example"}}},
			host:    "quay.io",
			want:    []string{"https://q.example/v2 pull,resolve mirror ns=quay.io", "https://quay.io/v2 pull,resolve,push upstream"},
		},
		{
			name:    "inline mirror listing the upstream",
			mirrors: map[string]config.MirrorConfig{"docker.io": {Endpoints: []string{"https://m.example", "https://registry-1.docker.io"}}},
			host:    "docker.io",
			want: []string{
				"https://m.example/v2 pull,resolve mirror ns=docker.io",
				"https://registry-1.docker.io/v2 pull,resolve upstream",
			},
		},
		{
			name: "inline mirror paths",
			mirrors: map[string]config.MirrorConfig{"docker.io": {Endpoints: []string{
				"https://harbor.example/v2/dockerhub-proxy", "https://plain.example/", "https://sub.example/mirror", "bad url://",
			}}},
			host: "docker.io",
			want: []string{
				"https://harbor.example/v2/dockerhub-proxy pull,resolve mirror ns=docker.io",
				"https://plain.example/v2 pull,resolve mirror ns=docker.io",
				"https://sub.example/mirror/v2 pull,resolve mirror ns=docker.io",
				hub,
			},
			warnings: []string{`registry.mirrors."docker.io"`},
		},
		{
			name:     "unknown keys are reported, not fatal",
			files:    map[string]string{"docker.io/hosts.toml": "skip-verify = true\n[host.\"https://m.example\"]\n  skip-verify = true\n"},
			host:     "docker.io",
			want:     []string{"https://m.example/v2 pull,resolve,push mirror ns=docker.io", hub},
			warnings: []string{`line 1: unknown key "skip-verify"; ignored`, `line 3: unknown key "skip-verify"; ignored`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			r := New(config.RegistryConfig{ConfigPath: root, Mirrors: tt.mirrors, Configs: tt.configs})
			res, err := r.resolve(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(res.endpoints); !slices.Equal(got, tt.want) {
				t.Errorf("endpoints:\n got %q\nwant %q\nwarnings: %q", got, tt.want, res.warnings)
			}
			all := strings.Join(res.warnings, "\n")
			if m := containsAll(all, tt.warnings...); len(m) > 0 {
				t.Errorf("warnings %q lack %q", res.warnings, m)
			}
			if len(tt.warnings) == 0 && len(res.warnings) > 0 {
				t.Errorf("unexpected warnings %q", res.warnings)
			}
			if tt.check != nil && len(res.endpoints) == len(tt.want) {
				tt.check(t, res.endpoints)
			}
			// The public entry point agrees with the internal one.
			eps, err := r.Endpoints(tt.host)
			if err != nil || !slices.Equal(summary(eps), summary(res.endpoints)) {
				t.Errorf("Endpoints() = %q, %v", summary(eps), err)
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestEndpointsInvalidHost(t *testing.T) {
	r := New(config.RegistryConfig{ConfigPath: t.TempDir()})
	for _, h := range []string{"", "..", "../etc", "a/b", "host:port", "host:99999", "-bad.example", "[zz]:5000", "https://docker.io"} {
		if _, err := r.Endpoints(h); err == nil {
			t.Errorf("Endpoints(%q): want error", h)
		}
	}
	for _, h := range []string{"docker.io", "localhost:5000", "[::1]:5000", "10.0.0.1", "My-Registry.example"} {
		if _, err := r.Endpoints(h); err != nil {
			t.Errorf("Endpoints(%q): %v", h, err)
		}
	}
}

func TestNoConfigPath(t *testing.T) {
	r := New(config.RegistryConfig{})
	eps, err := r.Endpoints("docker.io")
	if err != nil || len(eps) != 1 || eps[0].URL.String() != "https://registry-1.docker.io/v2" || eps[0].Mirror || eps[0].Namespace != "" {
		t.Fatalf("got %q, %v", summary(eps), err)
	}
}

// Operators edit hosts.toml without restarting: a changed file is seen on
// the next lookup, an unchanged one is served from the cache.
func TestReloadOnChange(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "docker.io", "hosts.toml")
	writeFiles(t, root, map[string]string{"docker.io/hosts.toml": "[host.\"https://one.example\"]\n"})
	r := New(config.RegistryConfig{ConfigPath: root})
	first := func() string {
		eps, err := r.Endpoints("docker.io")
		if err != nil {
			t.Fatal(err)
		}
		return eps[0].URL.Host
	}
	if got := first(); got != "one.example" {
		t.Fatalf("got %s", got)
	}
	if err := os.WriteFile(file, []byte("[host.\"https://two.example\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Same size as before: the modification time must tell them apart.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if got := first(); got != "two.example" {
		t.Fatalf("after edit got %s", got)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if got := first(); got != "registry-1.docker.io" {
		t.Fatalf("after removal got %s", got)
	}
}

// Endpoint values must not share mutable state with the cache.
func TestEndpointsAreCopies(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"docker.io/hosts.toml": "[host.\"https://m.example\"]\nheader = { x = \"1\" }\n"})
	r := New(config.RegistryConfig{ConfigPath: root})
	eps, _ := r.Endpoints("docker.io")
	eps[0].URL.Host = "evil.example"
	eps[0].Header.Set("X", "2")
	again, _ := r.Endpoints("docker.io")
	if again[0].URL.Host != "m.example" || again[0].Header.Get("X") != "1" {
		t.Fatalf("cached state was mutated: %v %v", again[0].URL, again[0].Header)
	}
}

func TestRegistryHost(t *testing.T) {
	for ref, want := range map[string]string{
		"nginx":                           "docker.io",
		"nginx:alpine":                    "docker.io",
		"library/nginx:alpine":            "docker.io",
		"docker.io/library/nginx:alpine":  "docker.io",
		"registry.k8s.io/pause:3.10":      "registry.k8s.io",
		"127.0.0.1:5000/app@sha256:abcd":  "127.0.0.1:5000",
		"localhost/app":                   "localhost",
		"localhost:5000":                  "localhost:5000",
		"docker.io":                       "docker.io",
		"registry.k8s.io":                 "registry.k8s.io",
		"127.0.0.1:5000":                  "127.0.0.1:5000",
		"192.168.0.2":                     "192.168.0.2",
		"[::1]:5000/x":                    "[::1]:5000",
		"busybox:1":                       "docker.io",
		"ubuntu:22.04":                    "docker.io",
		"myregistry.example:5000/ns/x:v1": "myregistry.example:5000",
	} {
		if got := RegistryHost(ref); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", ref, got, want)
		}
	}
}
