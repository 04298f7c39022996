package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-rt/cri-rt/pkg/config"
)

func TestCAAndClientCertificates(t *testing.T) {
	pki := newPKI(t)
	tests := []struct {
		name       string
		files      map[string]string
		configs    map[string]config.RegistryHostConfig
		host       string
		index      int // endpoint to check
		wantClient int
	}{
		{
			name: "ca relative to the host directory",
			files: map[string]string{
				"docker.io/certs/mirror-ca.pem": string(pki.caPEM),
				"docker.io/hosts.toml":          "[host.\"https://mirror.example\"]\n  ca = \"certs/mirror-ca.pem\"\n",
			},
			host: "docker.io",
		},
		{
			name: "ca list and client pair list",
			files: map[string]string{
				"r.example/ca.pem":     string(pki.caPEM),
				"r.example/other.pem":  string(pki.caPEM),
				"r.example/c.pem":      string(pki.clientPEM),
				"r.example/k.pem":      string(pki.clientKe),
				"r.example/both.pem":   string(pki.clientPEM) + string(pki.clientKe),
				"r.example/hosts.toml": "[host.\"https://mirror.example\"]\n  ca = [\"ca.pem\", \"other.pem\"]\n  client = [[\"c.pem\", \"k.pem\"], \"both.pem\"]\n",
			},
			host:       "r.example",
			wantClient: 2,
		},
		{
			name: "docker certs.d files apply to the upstream",
			files: map[string]string{
				"mirror.example/hosts.toml":  "skip_verify = false\n",
				"mirror.example/ca.crt":      string(pki.caPEM),
				"mirror.example/client.cert": string(pki.clientPEM),
				"mirror.example/client.key":  string(pki.clientKe),
			},
			host:       "mirror.example",
			wantClient: 1,
		},
		{
			name: "certs.d files without hosts.toml",
			files: map[string]string{
				"mirror.example/ca.crt":     string(pki.caPEM),
				"mirror.example/combo.cert": string(pki.clientPEM) + string(pki.clientKe),
			},
			host:       "mirror.example",
			wantClient: 1,
		},
		{
			name:  "inline ca_file and client pair",
			files: map[string]string{"x/ca.pem": string(pki.caPEM), "x/c.pem": string(pki.clientPEM), "x/k.pem": string(pki.clientKe)},
			configs: map[string]config.RegistryHostConfig{
				"mirror.example": {TLS: &config.TLSConfig{CAFile: "{root}/x/ca.pem", CertFile: "{root}/x/c.pem", KeyFile: "{root}/x/k.pem"}},
			},
			host:       "mirror.example",
			wantClient: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			for h, c := range tt.configs {
				c.TLS.CAFile = strings.ReplaceAll(c.TLS.CAFile, "{root}", root)
				c.TLS.CertFile = strings.ReplaceAll(c.TLS.CertFile, "{root}", root)
				c.TLS.KeyFile = strings.ReplaceAll(c.TLS.KeyFile, "{root}", root)
				tt.configs[h] = c
			}
			r := New(config.RegistryConfig{ConfigPath: root, Configs: tt.configs})
			res, err := r.resolve(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.warnings) > 0 {
				t.Fatalf("warnings: %q", res.warnings)
			}
			ep := res.endpoints[tt.index]
			if ep.TLS == nil || !trusts(ep.TLS.RootCAs, pki) {
				t.Fatalf("%s: CA not in RootCAs", ep.URL)
			}
			if got := len(ep.TLS.Certificates); got != tt.wantClient {
				t.Errorf("client certificates: %d, want %d", got, tt.wantClient)
			}
		})
	}
}

// The certificate files of a directory are re-read when they change, e.g.
// a rotated CA.
func TestCARotation(t *testing.T) {
	a, b := newPKI(t), newPKI(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"mirror.example/ca.crt": string(a.caPEM)})
	r := New(config.RegistryConfig{ConfigPath: root})
	eps, _ := r.Endpoints("mirror.example")
	if !trusts(eps[0].TLS.RootCAs, a) || trusts(eps[0].TLS.RootCAs, b) {
		t.Fatal("want CA a only")
	}
	writeFiles(t, root, map[string]string{"mirror.example/ca.crt": string(b.caPEM) + "\n"})
	eps, _ = r.Endpoints("mirror.example")
	if !trusts(eps[0].TLS.RootCAs, b) {
		t.Fatal("rotated CA not picked up")
	}
}

// A CA that cannot be read drops a mirror but keeps the upstream.
func TestBrokenCAOnUpstreamKeepsIt(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"quay.io/hosts.toml":  "ca = \"missing.pem\"\n[host.\"https://m.example\"]\n  ca = \"garbage.pem\"\n",
		"quay.io/garbage.pem": "not a certificate",
	})
	r := New(config.RegistryConfig{ConfigPath: root})
	res, err := r.resolve("quay.io")
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(res.endpoints); len(got) != 1 || got[0] != "https://quay.io/v2 pull,resolve,push upstream" {
		t.Fatalf("got %q", got)
	}
	all := strings.Join(res.warnings, "\n")
	if m := containsAll(all, "garbage.pem: no PEM certificate", "missing.pem", "continuing without it"); len(m) > 0 {
		t.Fatalf("warnings %q lack %q", res.warnings, m)
	}
}

// End to end: a TLS server whose CA is given through `ca` in hosts.toml is
// reachable with the Endpoint's TLS config and not with the system roots.
func TestEndToEndCAFromHostsToml(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "{}")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host := u.Host // 127.0.0.1:<port>

	root := t.TempDir()
	caPEM := pemOf("CERTIFICATE", srv.Certificate().Raw)
	writeFiles(t, root, map[string]string{
		host + "/ca.pem":     string(caPEM),
		host + "/hosts.toml": fmt.Sprintf("server = %q\nca = \"ca.pem\"\n", srv.URL),
	})
	r := New(config.RegistryConfig{ConfigPath: root})
	eps, err := r.Endpoints(host)
	if err != nil {
		t.Fatal(err)
	}
	ep := eps[len(eps)-1]
	if ep.URL.String() != srv.URL+"/v2" || ep.TLS == nil {
		t.Fatalf("endpoint %v tls=%v", ep.URL, ep.TLS)
	}

	get := func(cfg *tls.Config) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(ep.URL.String() + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	if err := get(ep.TLS); err != nil {
		t.Fatalf("with the endpoint's TLS config: %v", err)
	}
	err = get(&tls.Config{})
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("with the system roots: want unknown authority, got %v", err)
	}
}

// End to end with mutual TLS through docker's certs.d files.
func TestEndToEndClientCertificateFiles(t *testing.T) {
	pki := newPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "{}")
	}))
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(pki.ca)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.serverTLS(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")

	root := t.TempDir()
	dir := filepath.Join(root, strings.Replace(host, ":", "_", 1)+"_") // the host_port_ form
	writeFiles(t, dir, map[string]string{
		"ca.crt":      string(pki.caPEM),
		"client.cert": string(pki.clientPEM),
		"client.key":  string(pki.clientKe),
	})
	r := New(config.RegistryConfig{ConfigPath: root})
	eps, err := r.Endpoints(host)
	if err != nil {
		t.Fatal(err)
	}
	// Loopback with TLS files present: https, verified, no http fallback.
	ep := eps[0]
	if ep.URL.Scheme != "https" || ep.TLS.InsecureSkipVerify {
		t.Fatalf("endpoint %v insecure=%v", ep.URL, ep.TLS.InsecureSkipVerify)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: ep.TLS}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(ep.URL.String() + "/")
	if err != nil {
		t.Fatalf("mTLS GET: %v", err)
	}
	resp.Body.Close()

	// Without the client certificate the server refuses.
	noClient := ep.TLS.Clone()
	noClient.Certificates = nil
	c2 := &http.Client{Transport: &http.Transport{TLSClientConfig: noClient}}
	defer c2.CloseIdleConnections()
	if resp, err := c2.Get(ep.URL.String() + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("server accepted a client without certificate")
	}
}
