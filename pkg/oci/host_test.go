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
	// Even a restricted node holds CAP_CHOWN; the rest varies.
	if !slices.Contains(caps, "CAP_CHOWN") {
		t.Errorf("CAP_CHOWN missing from %v", caps)
	}
	for _, c := range caps {
		if !knownCapabilities()[c] {
			t.Errorf("kernel capability %s is not known", c)
		}
	}
	_ = AppArmorEnabled()
	if !containsWord("cpuset cpu io memory hugetlb pids", "hugetlb") || containsWord("hugetlbx", "hugetlb") {
		t.Error("containsWord")
	}
}
