package benchkit

import (
	"context"
	"testing"
)

// TestLayerDigests pins the generator's output: the layer cache and the
// reports rely on the same seed giving the same digests. If this fails on
// purpose, bump genVersion and update the digests.
func TestLayerDigests(t *testing.T) {
	spec := PullSpec{Seed: 1, SizeMB: 1, Layers: 2}
	dir := t.TempDir()
	want := []string{
		"sha256:4d148f3ea6f9731e9f4254d2829ee7122f6d705a7da7c611706fd56a1303c0f2",
		"sha256:18625934bb8dc1f02f0313b3d4981f614ea4ca2a4aad916b9fef6f8f9f343066",
	}
	specs := spec.layerSpecs()[:len(want)] // not the 50 MB new layer
	ls, err := generateLayers(context.Background(), dir, specs, vocabulary(spec.Seed))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if l.Digest.String() != want[i] {
			t.Errorf("layer %d: digest %s, want %s", i, l.Digest, want[i])
		}
	}
}
