package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cri-rt/cri-rt/hack/internal/benchkit"
	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// registryName is the name every image is pulled by. Each runtime's
// hosts.toml (the same file for all) sends it to the local registry over
// http, as a node's mirror config would; nothing falls back to the
// internet.
const registryName = "bench.registry.test"

// images are the references the benchmark uses, all on registryName.
type images struct {
	pause   string // the sandbox image (the project's pause program)
	app     string // busybox applets + hack/bench/app, the container image
	big     string // the pull image
	big2    string // big's first n-1 layers + one new layer
	bigImg  *benchkit.Image
	bigImg2 *benchkit.Image
	info    string // describes the big images
	newL    *benchkit.Layer
}

// busyboxApplets are linked in the app image (test/framework's set).
var busyboxApplets = []string{"sh", "echo", "cat", "sleep", "ls", "id", "touch", "mkdir", "rm", "ps", "top",
	"head", "tail", "tr", "dd", "wc", "grep", "true", "false", "env", "hostname", "ip", "nc",
	"wget", "mount", "yes", "seq", "date", "kill", "test", "[", "printf", "uname", "stat", "readlink"}

// buildProgram compiles a Go program of this module (static) into dir.
func buildProgram(ctx context.Context, dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// pushSmallImages builds and pushes the pause image (the project's pause,
// as test/framework does) and the app image: Debian's busybox-static with
// its applets linked plus hack/bench/app as /bin/app, which says when it
// is ready and exits at once on SIGTERM, so that StopContainer measures
// the runtime and not a grace period.
func pushSmallImages(ctx context.Context, regHost, pauseBin, appBin string) (pause, app string, err error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", "", fmt.Errorf("busybox not installed (make deps installs busybox-static): %w", err)
	}
	pauseImg, err := buildImage(imagebuild.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		[]imagebuild.Entry{imagebuild.HostFile("pause", 0o755, pauseBin)})
	if err != nil {
		return "", "", err
	}
	entries := []imagebuild.Entry{
		imagebuild.HostFile("bin/busybox", 0o755, bb),
		imagebuild.HostFile("bin/app", 0o755, appBin),
		imagebuild.Dir("tmp", 0o1777), imagebuild.Dir("etc", 0o755), imagebuild.Dir("root", 0o700),
		imagebuild.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		imagebuild.File("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
	}
	for _, a := range busyboxApplets {
		entries = append(entries, imagebuild.Hardlink("bin/"+a, "bin/busybox"))
	}
	appImg, err := buildImage(imagebuild.Config{Cmd: []string{"/bin/app"}, Env: []string{"PATH=/bin"}}, entries)
	if err != nil {
		return "", "", err
	}
	pause, app = "pause:3.10", "library/busybox:bench"
	for tag, img := range map[string]*imagebuild.Image{pause: pauseImg, app: appImg} {
		v, err := img.Build()
		if err != nil {
			return "", "", err
		}
		if err := imagebuild.Push(ctx, regHost+"/"+tag, v, true); err != nil {
			return "", "", err
		}
	}
	return registryName + "/" + pause, registryName + "/" + app, nil
}

func buildImage(cfg imagebuild.Config, entries []imagebuild.Entry) (*imagebuild.Image, error) {
	b, err := (&imagebuild.Layer{Name: "layer0", Entries: entries}).Build()
	if err != nil {
		return nil, err
	}
	return &imagebuild.Image{Config: cfg, Layers: []*imagebuild.Blob{b}}, nil
}

// bigImages returns the two pull images, generating their layers into the
// cache directory unless an earlier run left them there (the same seed
// gives the same bytes, so they are reused rather than regenerated).
func bigImages(ctx context.Context, cacheDir string, opts options) (*images, error) {
	spec := benchkit.PullSpec{Seed: opts.seed, SizeMB: opts.sizeMB, Layers: opts.layers}
	dir := filepath.Join(cacheDir, spec.CacheDirName())
	layers, took, cached, err := cachedLayers(ctx, dir, spec)
	if err != nil {
		return nil, err
	}
	n := opts.layers
	img, img2, err := benchkit.NewPullImages(layers)
	if err != nil {
		return nil, err
	}
	c, u := img.Sizes()
	how := fmt.Sprintf("generated in %.0fs", took.Seconds())
	if cached {
		how = "cached in " + dir
	}
	info := fmt.Sprintf("%d layers, %.0f MB tar, %.0f MB gzip; :2 shares %d of them and adds one of %.0f MB tar, %.0f MB gzip (%s)",
		n, float64(u)/1e6, float64(c)/1e6, n-1, float64(layers[n].USize)/1e6, float64(layers[n].Size)/1e6, how)
	return &images{
		big: registryName + "/" + benchkit.RepoName + ":1", big2: registryName + "/" + benchkit.RepoName + ":2",
		bigImg: img, bigImg2: img2, info: info, newL: layers[n],
	}, nil
}

// cachedLayers returns the layers of spec from dir, generating them there
// first unless an earlier run did.
func cachedLayers(ctx context.Context, dir string, spec benchkit.PullSpec) (ls []*benchkit.Layer, took time.Duration, cached bool, err error) {
	index := filepath.Join(dir, "layers.json")
	if b, err := os.ReadFile(index); err == nil && json.Unmarshal(b, &ls) == nil && len(ls) == spec.Layers+1 && layersPresent(dir, ls) {
		for _, l := range ls {
			l.Path = filepath.Join(dir, l.Path)
		}
		return ls, 0, true, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, 0, false, err
	}
	progress(fmt.Sprintf("generating %d + 1 layers (%d MB + %d MB) into %s", spec.Layers, spec.SizeMB, benchkit.NewLayerMB, dir))
	start := time.Now()
	ls, err = spec.GenerateLayers(ctx, tmp)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, 0, false, err
	}
	took = time.Since(start)
	rel := make([]benchkit.Layer, len(ls))
	for i, l := range ls {
		rel[i] = *l
		rel[i].Path = filepath.Base(l.Path)
	}
	b, _ := json.MarshalIndent(rel, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "layers.json"), b, 0o644); err != nil {
		return nil, 0, false, err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, 0, false, err
	}
	for _, l := range ls {
		l.Path = filepath.Join(dir, filepath.Base(l.Path))
	}
	return ls, took, false, nil
}

func layersPresent(dir string, ls []*benchkit.Layer) bool {
	for _, l := range ls {
		st, err := os.Stat(filepath.Join(dir, l.Path))
		if err != nil || st.Size() != l.Size || strings.Contains(l.Path, "/") {
			return false
		}
	}
	return true
}
