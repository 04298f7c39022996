// Command image builds the cri-rt installer image that deploy/daemonset.yaml
// runs, and pushes it to a registry. No container engine is needed: the
// image is assembled with pkg/imagebuild from files on this machine.
//
//	make build
//	go run ./deploy/image --image 127.0.0.1:5000/cri-rt-installer:dev
//
// The image holds busybox (the shell, cp, sha256sum, nsenter, ... that
// install.sh and the DaemonSet use) with each applet hard-linked in /bin,
// and under /opt/cri-rt: install.sh, cri-rt.service and bin/cri-rt,
// bin/cri-rt-monitor. The build is reproducible (fixed timestamps, sorted
// entries), so the same inputs give the same digest and an unchanged
// rebuild pushes nothing new. It prints "REF@DIGEST" on success.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

func main() {
	var o options
	flag.StringVar(&o.image, "image", "", "reference to push to, e.g. 127.0.0.1:5000/cri-rt-installer:v1 (required unless --dry-run)")
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding the built cri-rt and cri-rt-monitor (make build)")
	flag.StringVar(&o.deployDir, "deploy", "deploy", "directory holding install.sh and cri-rt.service")
	flag.StringVar(&o.busybox, "busybox", "", "busybox binary (default: busybox from PATH; Debian: apt-get install busybox-static)")
	flag.BoolVar(&o.insecure, "insecure", false, "push over plain HTTP even to a non-loopback registry")
	flag.BoolVar(&o.dryRun, "dry-run", false, "build and print the digest without pushing")
	flag.Parse()
	if flag.NArg() > 0 || (o.image == "" && !o.dryRun) {
		fmt.Fprintln(os.Stderr, "usage: image --image REF [--bin DIR] [--deploy DIR] [--busybox PATH] [--insecure] [--dry-run]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	image, binDir, deployDir, busybox string
	insecure, dryRun                  bool
}

func run(ctx context.Context, o options) error {
	img, err := build(o)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if o.dryRun {
		fmt.Println(digest)
		return nil
	}
	if err := imagebuild.Push(ctx, o.image, img, o.insecure); err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", o.image, digest)
	return nil
}

// The installer's directory in the image; install.sh finds the binaries in
// its bin/ subdirectory.
const installDir = "opt/cri-rt"

func build(o options) (v1.Image, error) {
	bb := o.busybox
	if bb == "" {
		p, err := exec.LookPath("busybox")
		if err != nil {
			return nil, fmt.Errorf("busybox not found (apt-get install busybox-static, or pass --busybox): %w", err)
		}
		bb = p
	}
	crirt := filepath.Join(o.binDir, "cri-rt")
	monitor := filepath.Join(o.binDir, "cri-rt-monitor")
	for _, f := range []string{bb, crirt, monitor, filepath.Join(o.deployDir, "install.sh"), filepath.Join(o.deployDir, "cri-rt.service")} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w (run make build first, from the repository root)", err)
		}
	}
	applets, err := busyboxApplets(bb)
	if err != nil {
		return nil, err
	}
	version, err := exec.Command(crirt, "version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s version: %w", crirt, err)
	}

	// busybox in its own layer: it changes far less often than cri-rt, so
	// nodes keep it cached across upgrades.
	base := []imagebuild.Entry{
		imagebuild.HostFile("bin/busybox", 0o755, bb),
		imagebuild.Dir("tmp", 0o1777),
		imagebuild.Dir("host", 0o755),
	}
	for _, a := range applets {
		// Hard links rather than symlinks, as the test images do: busybox
		// dispatches on argv[0] either way, and links survive copying.
		base = append(base, imagebuild.Hardlink("bin/"+a, "bin/busybox"))
	}
	// Static binaries (busybox-static, CGO_ENABLED=0 builds) add nothing
	// here; a dynamic one brings its loader and libraries along.
	libs, err := imagebuild.SharedLibraries(nil, bb, crirt, monitor)
	if err != nil {
		return nil, err
	}
	base = append(base, libs...)

	files := []imagebuild.Entry{
		imagebuild.HostFile(installDir+"/install.sh", 0o755, filepath.Join(o.deployDir, "install.sh")),
		imagebuild.HostFile(installDir+"/cri-rt.service", 0o644, filepath.Join(o.deployDir, "cri-rt.service")),
		imagebuild.HostFile(installDir+"/bin/cri-rt", 0o755, crirt),
		imagebuild.HostFile(installDir+"/bin/cri-rt-monitor", 0o755, monitor),
	}
	var layers []*imagebuild.Blob
	for _, l := range []*imagebuild.Layer{{Name: "busybox", Entries: base}, {Name: "cri-rt", Entries: files}} {
		b, err := l.Build()
		if err != nil {
			return nil, err
		}
		layers = append(layers, b)
	}
	ver := strings.TrimPrefix(firstLine(string(version)), "cri-rt ")
	return (&imagebuild.Image{
		Layers: layers,
		Config: imagebuild.Config{
			Cmd: []string{"/" + installDir + "/install.sh", "--help"},
			Env: []string{"PATH=/bin:/" + installDir + "/bin"},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "cri-rt-installer",
				"org.opencontainers.image.description": "Installs cri-rt on a node (deploy/daemonset.yaml)",
				"org.opencontainers.image.version":     ver,
			},
		},
	}).Build()
}

// busyboxApplets asks the binary itself which applets it has, so the image
// matches whichever busybox build is given.
func busyboxApplets(bb string) ([]string, error) {
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bb, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 {
		return nil, errors.New(bb + " --list printed no applets")
	}
	return applets, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
