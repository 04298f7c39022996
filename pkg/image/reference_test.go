package image

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParseRefNormalises(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"busybox":                        "docker.io/library/busybox:latest",
		"busybox:1.36":                   "docker.io/library/busybox:1.36",
		"library/busybox":                "docker.io/library/busybox:latest",
		"docker.io/library/busybox":      "docker.io/library/busybox:latest",
		"user/app":                       "docker.io/user/app:latest",
		"registry.k8s.io/pause:3.10":     "registry.k8s.io/pause:3.10",
		"127.0.0.1:5000/a/b":             "127.0.0.1:5000/a/b:latest",
		"busybox@" + d:                   "docker.io/library/busybox@" + d,
		"busybox:1.36@" + d:              "docker.io/library/busybox@" + d,
		"localhost:5000/x/y:z":           "localhost:5000/x/y:z",
		"gcr.io/k8s-staging-cri-tools/a": "gcr.io/k8s-staging-cri-tools/a:latest",
	} {
		r, err := ParseRef(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if r.String() != want {
			t.Errorf("%s -> %s, want %s", in, r, want)
		}
	}
	for _, bad := range []string{"", "Busybox", "a b", "x@sha256:short"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestChainIDs(t *testing.T) {
	// ChainID(L1|L2) = sha256(ChainID(L1) + " " + DiffID(L2)).
	ids := chainIDs([]digest.Digest{
		"sha256:a", "sha256:b",
	})
	if ids[0] != "sha256:a" || ids[1] != digest.FromString("sha256:a sha256:b") {
		t.Fatalf("chain IDs %v", ids)
	}
}
