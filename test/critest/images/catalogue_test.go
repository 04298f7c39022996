package images

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// critestRefs are the image references in cri-tools v1.37.0's
// pkg/validate, pkg/framework (Linux) and pkg/benchmark (amd64 defaults),
// spelled as there.
var critestRefs = []string{
	"registry.k8s.io/e2e-test-images/busybox:1.29-2",
	"registry.k8s.io/e2e-test-images/nginx:1.14-2",
	"registry.k8s.io/e2e-test-images/httpd:2.4.39-4",
	"registry.k8s.io/e2e-test-images/nonewprivs:1.3",
	"registry.k8s.io/pause:3.9",
	"k8s.gcr.io/pause:3.9",
	"gcr.io/k8s-staging-cri-tools/test-image-user-uid",
	"gcr.io/k8s-staging-cri-tools/test-image-user-username",
	"gcr.io/k8s-staging-cri-tools/test-image-user-uid-group",
	"gcr.io/k8s-staging-cri-tools/test-image-user-username-group",
	"gcr.io/k8s-staging-cri-tools/test-image-predefined-group",
	"gcr.io/k8s-staging-cri-tools/test-image-latest",
	"gcr.io/k8s-staging-cri-tools/test-image-tag:test",
	"gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf",
	"gcr.io/k8s-staging-cri-tools/test-image-tag:all",
	"gcr.io/k8s-staging-cri-tools/test-image-1:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-2:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-3:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:1",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:2",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:3",
	"gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64",
	"public.ecr.aws/docker/library/busybox:1.35.0-glibc",
	"public.ecr.aws/docker/library/busybox:1-uclibc",
	"public.ecr.aws/docker/library/busybox:1",
	"public.ecr.aws/docker/library/busybox:1-glibc",
	"public.ecr.aws/docker/library/busybox:1-musl",
}

func TestCatalogueCoversCritest(t *testing.T) {
	built := map[string]bool{}
	names := map[string]bool{}
	for _, s := range Catalogue() {
		if names[s.Name] {
			t.Errorf("duplicate spec name %s", s.Name)
		}
		names[s.Name] = true
		for _, r := range s.Refs {
			c, err := Canonical(r)
			if err != nil {
				t.Fatal(err)
			}
			if built[c] {
				t.Errorf("%s appears in two specs", r)
			}
			built[c] = true
		}
	}
	for _, r := range critestRefs {
		if _, ok := Unbuildable[r]; ok {
			continue
		}
		c, _ := Canonical(r)
		if !built[c] {
			t.Errorf("critest uses %s but the catalogue does not build it", r)
		}
	}
	for r := range Unbuildable {
		if !contains(critestRefs, r) {
			t.Errorf("Unbuildable lists %s which critest does not use", r)
		}
	}
}

func TestImagesDocListsEveryReference(t *testing.T) {
	doc, err := os.ReadFile("../IMAGES.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range critestRefs {
		if !strings.Contains(string(doc), r) {
			t.Errorf("IMAGES.md does not mention %s", r)
		}
	}
}

func TestBuildIsDeterministicAndGroupsHold(t *testing.T) {
	bb, _ := testBusybox(t)
	first, second := buildAll(t, bb), buildAll(t, bb)
	digest := map[string]v1.Hash{}
	bySpecDigest := map[v1.Hash]string{}
	byConfig := map[v1.Hash]string{}
	for i, b := range first {
		if second[i].Digest != b.Digest {
			t.Errorf("%s: digest changed between builds: %s vs %s", b.Spec.Name, b.Digest, second[i].Digest)
		}
		// Distinct specs must be distinct images, down to the image ID
		// (config digest) runtimes report, or repo-tag checks break.
		cfg, err := b.Image.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := bySpecDigest[b.Digest]; dup {
			t.Errorf("%s and %s have the same digest", b.Spec.Name, other)
		}
		if other, dup := byConfig[cfg]; dup {
			t.Errorf("%s and %s have the same image ID", b.Spec.Name, other)
		}
		bySpecDigest[b.Digest], byConfig[cfg] = b.Spec.Name, b.Spec.Name
		for _, r := range b.Spec.Refs {
			c, _ := Canonical(r)
			digest[c] = b.Digest
		}
	}
	for _, g := range SameImageGroups {
		for _, r := range g[1:] {
			if d0, d := digest[canon(t, g[0])], digest[canon(t, r)]; d0 != d || d == (v1.Hash{}) {
				t.Errorf("%s (%s) and %s (%s) must be the same image", g[0], d0, r, d)
			}
		}
	}
	for _, g := range DifferentImageGroups {
		seen := map[v1.Hash]string{}
		for _, r := range g {
			d := digest[canon(t, r)]
			if d == (v1.Hash{}) {
				t.Errorf("%s not built", r)
			}
			if other, dup := seen[d]; dup {
				t.Errorf("%s and %s must differ", r, other)
			}
			seen[d] = r
		}
	}
}

func canon(t *testing.T, r string) string {
	t.Helper()
	c, err := Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMirrorRef(t *testing.T) {
	const reg = "127.0.0.1:5000"
	cases := map[string]string{
		"registry.k8s.io/e2e-test-images/busybox:1.29-2":     reg + "/e2e-test-images/busybox:1.29-2",
		"gcr.io/k8s-staging-cri-tools/test-image-latest":     reg + "/k8s-staging-cri-tools/test-image-latest:latest",
		"k8s.gcr.io/pause:3.9":                               reg + "/pause:3.9",
		"registry.k8s.io/pause:3.9":                          reg + "/pause:3.9",
		"busybox":                                            reg + "/library/busybox:latest",
		"docker.io/library/nginx:1.25":                       reg + "/library/nginx:1.25",
		"quay.io/org/img:v1":                                 reg + "/org/img:v1",
		"public.ecr.aws/docker/library/busybox:1.35.0-glibc": reg + "/docker/library/busybox:1.35.0-glibc",
	}
	for up, want := range cases {
		got, err := MirrorRef(up, reg)
		if err != nil || got != want {
			t.Errorf("MirrorRef(%s) = %q, %v; want %q", up, got, err, want)
		}
	}
	for r := range Unbuildable {
		if _, err := MirrorRef(r, reg); err == nil {
			t.Errorf("digest reference %s must not map to a tag", r)
		}
	}
}

func TestPlanRejectsCollisions(t *testing.T) {
	a := Built{Spec: Spec{Name: "a", Refs: []string{"registry.k8s.io/x:1"}}, Digest: v1.Hash{Algorithm: "sha256", Hex: "aa"}}
	b := Built{Spec: Spec{Name: "b", Refs: []string{"k8s.gcr.io/x:1"}}, Digest: v1.Hash{Algorithm: "sha256", Hex: "bb"}}
	if _, err := Plan([]Built{a, b}, "127.0.0.1:5000"); err == nil {
		t.Fatal("two different images on one mirror reference must be an error")
	}
	b.Digest = a.Digest
	ts, err := Plan([]Built{a, b}, "127.0.0.1:5000")
	if err != nil || len(ts) != 1 || len(ts[0].Upstream) != 2 {
		t.Fatalf("identical images should share the target: %+v, %v", ts, err)
	}
}

func TestPushPullEveryImage(t *testing.T) {
	bb, _ := testBusybox(t)
	built := buildAll(t, bb)
	reg := newRegistry(t)
	targets, err := Plan(built, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Push(context.Background(), targets, false); err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{} // spec name -> pulled image
	for _, tg := range targets {
		ref, err := imagebuild.ParseReference(tg.Mirror, false)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref)
		if err != nil {
			t.Fatalf("%s: %v", tg.Mirror, err)
		}
		if desc.Digest != tg.Built.Digest {
			t.Errorf("%s: registry has %s, built %s", tg.Mirror, desc.Digest, tg.Built.Digest)
		}
		img := pullAMD64(t, ref, desc, tg.Built.Spec.Index)
		images[tg.Built.Spec.Name] = img
	}
	checkImages(t, images)
}

// pullAMD64 resolves a pushed reference the way a runtime on linux/amd64
// does, checking that indexed specs are single-entry indexes.
func pullAMD64(t *testing.T, ref name.Reference, desc *remote.Descriptor, indexed bool) v1.Image {
	t.Helper()
	if indexed != desc.MediaType.IsIndex() {
		t.Fatalf("%s: media type %s, index expected: %v", ref, desc.MediaType, indexed)
	}
	if indexed {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Platform == nil ||
			im.Manifests[0].Platform.OS != "linux" || im.Manifests[0].Platform.Architecture != "amd64" {
			t.Fatalf("%s: index entries %+v", ref, im.Manifests)
		}
	}
	img, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
