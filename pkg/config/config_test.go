package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Default().Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("default config does not parse back: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, Default())
	}
	// Every key line must carry a comment line above it.
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("key line %q has no comment", l)
		}
	}
}

func TestContractKeys(t *testing.T) {
	doc := `
root = "/r"
state = "/s"
oom_score = -500
cgroup_driver = "systemd"
sandbox_image = "example.com/pause:1"
default_runtime = "crun"
image_pull_progress_timeout = "90s"
[grpc]
address = "/s/x.sock"
[metrics]
address = "127.0.0.1:1338"
[runtimes.crun]
path = "/usr/bin/crun"
root = "/run/crun"
[cni]
bin_dirs = ["/a"]
conf_dir = "/b"
[stream]
address = "0.0.0.0"
port = 10010
[registry]
config_path = "/etc/x/certs.d"
[registry.mirrors."docker.io"]
endpoint = ["https://mirror.example"]
[registry.configs."192.168.0.2".tls]
insecure_skip_verify = true
[registry.configs."192.168.0.2".auth]
username = "admin"
password = "secret"
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/r" || c.State != "/s" || c.OOMScore != -500 || c.CgroupDriver != "systemd" ||
		c.SandboxImage != "example.com/pause:1" || c.DefaultRuntime != "crun" ||
		c.ImagePullProgressTimeout.Std() != 90*time.Second || c.GRPC.Address != "/s/x.sock" ||
		c.Metrics.Address != "127.0.0.1:1338" || c.CNI.ConfDir != "/b" || c.Stream.Port != 10010 ||
		c.Registry.ConfigPath != "/etc/x/certs.d" {
		t.Fatalf("unexpected config: %+v", c)
	}
	if c.Runtimes["crun"].Path != "/usr/bin/crun" || c.Runtimes["runc"].Path != "runc" {
		t.Fatalf("runtimes not merged over defaults: %+v", c.Runtimes)
	}
	if got := c.RuntimeRoot("runc"); got != "/s/runtimes/runc" {
		t.Fatalf("RuntimeRoot(runc) = %q", got)
	}
	if got := c.RuntimeRoot("crun"); got != "/run/crun" {
		t.Fatalf("RuntimeRoot(crun) = %q", got)
	}
	if ep := c.Registry.Mirrors["docker.io"].Endpoints; len(ep) != 1 || ep[0] != "https://mirror.example" {
		t.Fatalf("mirrors: %+v", c.Registry.Mirrors)
	}
	hc := c.Registry.Configs["192.168.0.2"]
	if hc.TLS == nil || !hc.TLS.InsecureSkipVerify || hc.Auth == nil || hc.Auth.Username != "admin" || hc.Auth.Password != "secret" {
		t.Fatalf("configs: %+v", hc)
	}
	// A config with mirrors round-trips through Encode too.
	var buf bytes.Buffer
	if err := c.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(again, c) {
		t.Fatalf("round trip differs:\n%s", buf.String())
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown top-level key", "root = \"/r\"\nroott = \"/x\"\n", []string{"key roott", "line 2"}},
		{"unknown nested key", "[grpc]\naddress = \"/a.sock\"\nadress = \"/b\"\n", []string{"key grpc.adress", "line 3"}},
		{"wrong type", "oom_score = \"low\"\n", []string{"oom_score", "line 1"}},
		{"bad duration", "image_pull_progress_timeout = \"soon\"\n", []string{"image_pull_progress_timeout", "soon"}},
		{"bad cgroup driver", "cgroup_driver = \"systemd-ish\"\n", []string{"key cgroup_driver", "systemd-ish"}},
		{"oom out of range", "oom_score = -2000\n", []string{"key oom_score"}},
		{"unknown default runtime", "default_runtime = \"kata\"\n", []string{"key default_runtime", "kata"}},
		{"relative root", "root = \"var/lib\"\n", []string{"key root"}},
		{"bad mirror url", "[registry.mirrors.\"docker.io\"]\nendpoint = [\"mirror.example\"]\n", []string{`registry.mirrors."docker.io".endpoint`}},
		{"bad log level", "log_level = \"loud\"\n", []string{"key log_level", "loud"}},
		{"syntax error", "root = \n", []string{"line 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.toml")
	c, err := Load(missing, false)
	if err != nil {
		t.Fatalf("missing default file must mean defaults: %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatal("not the defaults")
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("a missing explicit file must be an error")
	}
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte("bogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, false); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error should name the file: %v", err)
	}
}
