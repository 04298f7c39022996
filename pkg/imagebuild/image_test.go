package imagebuild

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// newRegistry starts go-containerregistry's in-process registry and returns
// its host:port (a 127.0.0.1 address, so pushes use plain HTTP).
func newRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func sampleImage(t *testing.T, f Format) *Image {
	t.Helper()
	base, err := (&Layer{Name: "base", Entries: []Entry{
		File("/bin/tool", 0o755, []byte("tool")),
		Hardlink("/bin/sh", "/bin/tool"),
		File("/etc/passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\n")),
	}}).Build()
	if err != nil {
		t.Fatal(err)
	}
	top, err := (&Layer{Name: "top", Entries: []Entry{
		File("/etc/passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\nuser:x:1002:1002::/:/bin/sh\n")),
		File("/marker", 0o600, []byte("m")).Owned(1002, 1003),
	}}).Build()
	if err != nil {
		t.Fatal(err)
	}
	return &Image{
		Layers: []*Blob{base, top},
		Format: f,
		Config: Config{
			Entrypoint:   []string{"/bin/tool"},
			Cmd:          []string{"-g", "daemon off;"},
			Env:          []string{"PATH=/bin"},
			User:         "1002:1003",
			WorkingDir:   "/srv",
			ExposedPorts: []string{"80/tcp", "53/udp"},
			Volumes:      []string{"/data"},
			Labels:       map[string]string{"b": "2", "a": "1"},
			StopSignal:   "SIGQUIT",
		},
	}
}

func TestImageBuildPushPull(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	for _, f := range []Format{OCI, Docker} {
		t.Run(f.String(), func(t *testing.T) {
			img, err := sampleImage(t, f).Build()
			if err != nil {
				t.Fatal(err)
			}
			again, err := sampleImage(t, f).Build()
			if err != nil {
				t.Fatal(err)
			}
			d1, _ := img.Digest()
			d2, _ := again.Digest()
			if d1 != d2 {
				t.Fatalf("rebuilding changed the digest: %v vs %v", d1, d2)
			}
			ref := reg + "/test/sample:" + f.String()
			if err := Push(ctx, ref, img, false); err != nil {
				t.Fatal(err)
			}
			got := pull(t, ref)
			if gd, _ := got.Digest(); gd != d1 {
				t.Fatalf("pulled digest %v, pushed %v", gd, d1)
			}
			checkPulled(t, got, f)
		})
	}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := ParseReference(ref, false)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func checkPulled(t *testing.T, img v1.Image, f Format) {
	t.Helper()
	mt, _ := img.MediaType()
	if mt != f.manifestType() {
		t.Errorf("manifest media type %s", mt)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != f.configType() {
		t.Errorf("config media type %s", m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != f.layerType() {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(Epoch) {
		t.Errorf("platform/created: %s/%s %v", cf.OS, cf.Architecture, cf.Created)
	}
	c := cf.Config
	if c.User != "1002:1003" || c.WorkingDir != "/srv" || c.StopSignal != "SIGQUIT" ||
		!reflect.DeepEqual(c.Entrypoint, []string{"/bin/tool"}) ||
		!reflect.DeepEqual(c.Cmd, []string{"-g", "daemon off;"}) ||
		!reflect.DeepEqual(c.Env, []string{"PATH=/bin"}) ||
		!reflect.DeepEqual(c.Labels, map[string]string{"a": "1", "b": "2"}) ||
		len(c.ExposedPorts) != 2 || len(c.Volumes) != 1 {
		t.Errorf("config: %+v", c)
	}
	if len(cf.History) != 2 || cf.History[1].CreatedBy != "imagebuild: top" {
		t.Errorf("history: %+v", cf.History)
	}
	files := flatten(t, img)
	if files["etc/passwd"] != "root:x:0:0::/root:/bin/sh\nuser:x:1002:1002::/:/bin/sh\n" {
		t.Errorf("upper layer did not win: %q", files["etc/passwd"])
	}
	if files["marker"] != "m" || files["bin/tool"] != "tool" {
		t.Errorf("files: %v", files)
	}
	if files["bin/sh"] != "->bin/tool" {
		t.Errorf("bin/sh: %q", files["bin/sh"])
	}
}

// flatten returns the merged filesystem: regular file bodies, and
// "->target" for links.
func flatten(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeLink, tar.TypeSymlink:
			out[h.Name] = "->" + h.Linkname
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			out[h.Name] = string(b)
		}
	}
}

func TestIndexPushPull(t *testing.T) {
	reg := newRegistry(t)
	for _, f := range []Format{OCI, Docker} {
		img, err := sampleImage(t, f).Build()
		if err != nil {
			t.Fatal(err)
		}
		arm := sampleImage(t, f)
		arm.Platform = Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
		armImg, err := arm.Build()
		if err != nil {
			t.Fatal(err)
		}
		idx, err := Index(f, armImg, img)
		if err != nil {
			t.Fatal(err)
		}
		idx2, err := Index(f, img, armImg)
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := idx.Digest()
		d2, _ := idx2.Digest()
		if d1 != d2 {
			t.Fatalf("index digest depends on argument order")
		}
		ref := reg + "/test/index:" + f.String()
		if err := PushIndex(context.Background(), ref, idx, false); err != nil {
			t.Fatal(err)
		}
		r, _ := ParseReference(ref, false)
		got, err := remote.Index(r)
		if err != nil {
			t.Fatal(err)
		}
		im, err := got.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.MediaType != f.indexType() || len(im.Manifests) != 2 {
			t.Fatalf("index: %+v", im)
		}
		if p := im.Manifests[0].Platform; p == nil || p.Architecture != "amd64" || p.OS != "linux" {
			t.Errorf("first entry platform %+v", p)
		}
		// A runtime resolving the index for linux/amd64 gets our image.
		desc, err := remote.Get(r, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			t.Fatal(err)
		}
		amd, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := img.Digest()
		if d, _ := amd.Digest(); d != want {
			t.Errorf("platform resolution gave %v, want %v", d, want)
		}
		if _, err := Index(f, img, img); err == nil {
			t.Error("two images for one platform must be rejected")
		}
	}
}

func TestPushAllSharesBlobs(t *testing.T) {
	reg := newRegistry(t)
	img, err := sampleImage(t, Docker).Build()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := Index(Docker, img)
	if err != nil {
		t.Fatal(err)
	}
	todo := map[string]remote.Taggable{
		reg + "/a/img:1":   img,
		reg + "/a/img:2":   img,
		reg + "/b/index:1": idx,
	}
	if err := PushAll(context.Background(), todo, false); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	for _, ref := range []string{reg + "/a/img:1", reg + "/a/img:2"} {
		if d, _ := pull(t, ref).Digest(); d != want {
			t.Errorf("%s: digest %v want %v", ref, d, want)
		}
	}
	r, _ := ParseReference(reg+"/b/index:1", false)
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.DockerManifestList {
		t.Errorf("index media type %s", desc.MediaType)
	}
}

func TestParseReferenceInsecure(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:5000/e2e-test-images/busybox:1.29-2": "http",
		"localhost:5000/x:1":                            "http",
		"[::1]:5000/x:1":                                "http",
		"registry.example:5000/x:1":                     "https",
	}
	for ref, scheme := range cases {
		r, err := ParseReference(ref, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Registry.Scheme(); got != scheme {
			t.Errorf("%s: scheme %s want %s", ref, got, scheme)
		}
	}
	r, err := ParseReference("registry.example/x:1", true)
	if err != nil || r.Context().Registry.Scheme() != "http" {
		t.Errorf("forced insecure: %v %v", r, err)
	}
	if _, err := ParseReference("not a ref", false); err == nil {
		t.Error("expected parse error")
	}
}
