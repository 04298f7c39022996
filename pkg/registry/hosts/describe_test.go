package hosts

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/cri-rt/cri-rt/pkg/config"
)

func TestDescribeMasksSecrets(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"docker.io/hosts.toml": `
[host."https://mirror.example"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  [host."https://mirror.example".header]
    Authorization = "Bearer header-secret"
    X-Trace = "visible"
[host."https://broken.example"]
  capabilities = ["teleport"]
`})
	r := New(config.RegistryConfig{
		ConfigPath: root,
		Configs: map[string]config.RegistryHostConfig{
			"mirror.example": {Auth: &config.AuthConfig{Username: "alice", Password: "pw-secret"}},
			"registry-1.docker.io": {Auth: &config.AuthConfig{
				Auth:          base64.StdEncoding.EncodeToString([]byte("bob:auth-secret")),
				IdentityToken: "token-secret",
			}},
		},
	})
	var b strings.Builder
	if err := r.Describe(&b, "docker.io/library/nginx:alpine"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log("\n" + out)
	for _, secret := range []string{"pw-secret", "auth-secret", "token-secret", "header-secret", base64.StdEncoding.EncodeToString([]byte("bob:auth-secret"))} {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks %q", secret)
		}
	}
	if m := containsAll(out,
		"registry docker.io",
		"1. https://mirror.example/v2  mirror  capabilities=pull,resolve",
		"query: ns=docker.io",
		"verify=OFF",
		"auth: username=alice password=***",
		"header: Authorization: ***",
		"header: X-Trace: visible",
		"2. https://registry-1.docker.io/v2  upstream  capabilities=pull,resolve,push",
		"auth=*** (username bob) identitytoken=***",
		`warning: `, `unknown capability "teleport"`,
	); len(m) > 0 {
		t.Errorf("output lacks %q", m)
	}
}

func TestDescribeInvalid(t *testing.T) {
	r := New(config.RegistryConfig{})
	var b strings.Builder
	if err := r.Describe(&b, "bad_host.example/x"); err == nil {
		t.Fatal("want error for an invalid host")
	}
}
