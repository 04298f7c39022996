package oci

import (
	"slices"
	"testing"
)

// The real probes must work on whatever machine runs cri-rt; their values
// depend on it, so only their consistency is checked.
func TestHostProbes(t *testing.T) {
	for _, p := range realProbes {
		_ = p()
	}
	caps, err := realCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"} {
		if !slices.Contains(caps, c) {
			t.Errorf("%s missing from %v", c, caps)
		}
	}
	for _, c := range caps {
		if !knownCapabilities()[c] {
			t.Errorf("kernel capability %s is not known", c)
		}
	}
	if !containsWord("cpuset cpu io memory hugetlb pids", "hugetlb") || containsWord("hugetlbx", "hugetlb") {
		t.Error("containsWord")
	}
}
