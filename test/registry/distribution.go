package registry

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Distribution is Debian's docker-registry (distribution 2.8) running as a
// process on 127.0.0.1, storing in a temp dir.
type Distribution struct {
	Host    string // 127.0.0.1:port
	Storage string
	cmd     *exec.Cmd
	done    chan struct{}
}

// DistributionOptions select TLS and auth.
type DistributionOptions struct {
	// Storage reuses a storage dir (to restart with other options); empty makes one.
	Storage string
	// TLS serves https with this CA's server certificate.
	TLS *CA
	// Htpasswd enables basic auth with this file.
	Htpasswd string
	// Token enables bearer-token auth through this server.
	Token *TokenServer
}

func execOutput(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).Output()
}

// StartDistribution starts the registry and waits until it answers. It is
// stopped at the end of the test.
func StartDistribution(t testing.TB, opts DistributionOptions) *Distribution {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry not installed (make deps): %v", err)
	}
	if opts.Storage == "" {
		opts.Storage = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n")
	fmt.Fprintf(&cfg, "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n", opts.Storage)
	fmt.Fprintf(&cfg, "http:\n  addr: %s\n", host)
	if opts.TLS != nil {
		fmt.Fprintf(&cfg, "  tls:\n    certificate: %s\n    key: %s\n", opts.TLS.CertFile, opts.TLS.KeyFile)
	}
	switch {
	case opts.Htpasswd != "":
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: cri-rt-test\n    path: %s\n", opts.Htpasswd)
	case opts.Token != nil:
		fmt.Fprintf(&cfg, "auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			opts.Token.URL, opts.Token.Service, opts.Token.Issuer, opts.Token.RootCertBundle)
	}
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Distribution{Host: host, Storage: opts.Storage, cmd: exec.Command(bin, "serve", cfgPath), done: make(chan struct{})}
	var logBuf syncWriter
	d.cmd.Stdout, d.cmd.Stderr = &logBuf, &logBuf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.Stop)

	scheme := "http"
	client := &http.Client{Timeout: time.Second}
	if opts.TLS != nil {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			t.Fatalf("docker-registry exited: %s", logBuf.String())
		default:
		}
		if resp, err := client.Get(scheme + "://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("docker-registry did not start: %s", logBuf.String())
	return nil
}

// Stop ends the registry process.
func (d *Distribution) Stop() {
	if d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}
