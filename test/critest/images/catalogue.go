// Package images defines and builds every container image the CRI
// validation suite critest (sigs.k8s.io/cri-tools v1.37.0) pulls, so the
// suite can run offline against a local registry that cri-rt mirrors the
// upstream registries to. See test/critest/IMAGES.md for what each spec
// checks and why each image looks the way it does.
package images

import (
	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// Upstream repository prefixes used by critest.
const (
	e2ePrefix     = "registry.k8s.io/e2e-test-images/"
	stagingPrefix = "gcr.io/k8s-staging-cri-tools/"
	ecrPrefix     = "public.ecr.aws/docker/library/"
)

// Spec is one image; every reference in Refs points at the same content.
type Spec struct {
	// Name identifies the spec in logs and tests.
	Name string
	// Refs are upstream references exactly as critest writes them (a
	// missing tag means "latest").
	Refs []string
	// Busybox says whether the image starts from the shared busybox rootfs.
	Busybox bool
	// LayerKey names the extra layer; specs with the same key share the
	// blob (built once). Empty when Content is nil.
	LayerKey string
	// Content returns the entries of the extra layer on top of the base,
	// given the paths of the compiled helper programs.
	Content func(progs map[string]string) []imagebuild.Entry
	Config  imagebuild.Config
	Format  imagebuild.Format
	// Index wraps the image into a single-platform index (manifest list),
	// as upstream publishes these references.
	Index bool
	// Benchmark marks images only `critest -benchmark` pulls.
	Benchmark bool
}

// Unbuildable lists references critest uses that cannot be reproduced,
// with the reason.
var Unbuildable = map[string]string{
	stagingPrefix + "test-image-digest@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf": "pinned by digest: the bytes of the upstream manifest cannot be recreated; " +
		"the 'public image with digest should be pulled and removed' spec fails offline (skip it). " +
		"We still push test-image-digest:latest like upstream.",
}

// SameImageGroups are reference lists critest requires to resolve to one
// image (one image ID with several repo tags).
var SameImageGroups = [][]string{
	{stagingPrefix + "test-image-tags:1", stagingPrefix + "test-image-tags:2", stagingPrefix + "test-image-tags:3"},
	{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"},
}

// DifferentImageGroups are reference lists critest requires to be
// distinct images.
var DifferentImageGroups = [][]string{
	{stagingPrefix + "test-image-1:latest", stagingPrefix + "test-image-2:latest", stagingPrefix + "test-image-3:latest"},
	{stagingPrefix + "test-image-tag:test", stagingPrefix + "test-image-tag:all"},
}

// pathEnv is the PATH of the busybox-based images.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// busyboxConfig is the config of the official busybox image.
func busyboxConfig() imagebuild.Config {
	return imagebuild.Config{Cmd: []string{"sh"}, Env: []string{pathEnv}}
}

// withUser returns the busybox config running as user, as built by
// cri-tools' images/image-user Dockerfile (`USER ${USER}`).
func withUser(user string) imagebuild.Config {
	c := busyboxConfig()
	c.User = user
	return c
}

// Catalogue returns every image critest uses, validation suite first.
func Catalogue() []Spec {
	specs := []Spec{
		{Name: "e2e-busybox", Refs: []string{e2ePrefix + "busybox:1.29-2"}, Busybox: true,
			Config: busyboxConfig(), Format: imagebuild.Docker, Index: true},
		nginxSpec("e2e-nginx", e2ePrefix+"nginx:1.14-2", "1.14.2", ":80", "SIGTERM", true),
		nginxSpec("hostnet-nginx", stagingPrefix+"hostnet-nginx-amd64", "1.25.0", ":12003", "SIGQUIT", false),
		httpdSpec(),
		{Name: "e2e-nonewprivs", Refs: []string{e2ePrefix + "nonewprivs:1.3"}, Busybox: true,
			LayerKey: "nnp", Content: nnpContent,
			Config: imagebuild.Config{Cmd: []string{"nnp"}, Env: []string{pathEnv}},
			Format: imagebuild.Docker, Index: true},
		{Name: "pause", Refs: SameImageGroups[1], LayerKey: "pause",
			Content: func(p map[string]string) []imagebuild.Entry {
				return []imagebuild.Entry{imagebuild.HostFile("/pause", 0o755, p["pause"])}
			},
			Config: imagebuild.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
			Format: imagebuild.Docker, Index: true},
		// cri-rt's own sandbox image (config sandbox_image), which critest
		// does not name but every pod needs. A label keeps it a different
		// image from pause:3.9, which one spec removes by ID expecting
		// exactly its two tags.
		{Name: "sandbox-pause", Refs: []string{"registry.k8s.io/pause:3.10"}, LayerKey: "pause",
			Content: func(p map[string]string) []imagebuild.Entry {
				return []imagebuild.Entry{imagebuild.HostFile("/pause", 0o755, p["pause"])}
			},
			Config: imagebuild.Config{Entrypoint: []string{"/pause"}, User: "65535:65535",
				Labels: map[string]string{"io.cri-rt.image": "sandbox"}},
			Format: imagebuild.Docker, Index: true},
		marked("test-image-latest", []string{stagingPrefix + "test-image-latest"}, "test-image-latest"),
		marked("test-image-tag-test", []string{stagingPrefix + "test-image-tag:test"}, "test"),
		marked("test-image-tag-all", []string{stagingPrefix + "test-image-tag:all"}, "all"),
		marked("test-image-digest", []string{stagingPrefix + "test-image-digest:latest"}, "test-image-digest"),
		marked("test-image-1", DifferentImageGroups[0][:1], "test-image-1"),
		marked("test-image-2", DifferentImageGroups[0][1:2], "test-image-2"),
		marked("test-image-3", DifferentImageGroups[0][2:], "test-image-3"),
		marked("test-image-tags", SameImageGroups[0], "same-image"),
		userSpec("test-image-user-uid", "1002"),
		userSpec("test-image-user-username", "www-data"),
		userSpec("test-image-user-uid-group", "1003:1004"),
		userSpec("test-image-user-username-group", "www-data:1004"),
		{Name: "test-image-predefined-group", Refs: []string{stagingPrefix + "test-image-predefined-group"},
			Busybox: true, LayerKey: "predefined-group",
			Content: func(map[string]string) []imagebuild.Entry { return predefinedGroupEntries() },
			Config:  withUser("1000"), Format: imagebuild.Docker, Index: true},
	}
	// critest -benchmark lists these (amd64 list). Upstream they are
	// different busybox builds; a label keeps them distinct images here.
	for _, tag := range []string{"1.35.0-glibc", "1-uclibc", "1", "1-glibc", "1-musl"} {
		c := busyboxConfig()
		c.Labels = map[string]string{"org.opencontainers.image.version": tag}
		specs = append(specs, Spec{Name: "benchmark-busybox-" + tag, Refs: []string{ecrPrefix + "busybox:" + tag},
			Busybox: true, Config: c, Format: imagebuild.OCI, Index: true, Benchmark: true})
	}
	return specs
}

// marked reproduces cri-tools' images/image-test Dockerfile
// (`FROM busybox; ADD ${TEST} ${TEST}`): busybox plus an empty file named
// after the image, which is what makes the test images differ.
func marked(name string, refs []string, file string) Spec {
	return Spec{Name: name, Refs: refs, Busybox: true, LayerKey: "marker-" + file,
		Content: func(map[string]string) []imagebuild.Entry {
			return []imagebuild.Entry{imagebuild.File("/"+file, 0o644, nil)}
		},
		Config: busyboxConfig(), Format: imagebuild.Docker, Index: true}
}

func userSpec(name, user string) Spec {
	return Spec{Name: name, Refs: []string{stagingPrefix + name}, Busybox: true,
		Config: withUser(user), Format: imagebuild.Docker, Index: true}
}
