// Command build-images builds every image critest v1.37.0 pulls and pushes
// them to a registry under their upstream repository paths and tags, so a
// runtime that mirrors registry.k8s.io, gcr.io, k8s.gcr.io (and, for
// benchmarks, public.ecr.aws) to that registry can run critest offline.
//
//	go run ./test/critest/cmd/build-images --registry 127.0.0.1:5000 [--busybox-deb PATH]
//
// Run it from inside the repository: it compiles the helper programs with
// `go build`. Without --busybox-deb or --busybox, Debian's busybox package
// is fetched once with `apt-get download busybox` into the user cache
// directory. Output is one line per pushed reference:
// "upstream -> mirror@digest".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cri-rt/cri-rt/test/critest/images"
)

func main() {
	var (
		registry   = flag.String("registry", "127.0.0.1:5000", "registry host:port to push to")
		debPath    = flag.String("busybox-deb", "", "Debian busybox .deb to take /bin/busybox from (the dynamic `busybox` package, not busybox-static)")
		binPath    = flag.String("busybox", "", "busybox binary to use instead of --busybox-deb")
		insecure   = flag.Bool("insecure", false, "use plain HTTP even for non-loopback registries")
		dryRun     = flag.Bool("dry-run", false, "build and print digests without pushing")
		noBenchmrk = flag.Bool("no-benchmark", false, "skip the images only `critest -benchmark` uses")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *registry, *debPath, *binPath, *insecure, *dryRun, *noBenchmrk); err != nil {
		fmt.Fprintln(os.Stderr, "build-images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, registry, deb, bin string, insecure, dryRun, noBenchmark bool) error {
	start := time.Now()
	work, err := os.MkdirTemp("", "critest-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	bb, err := busybox(ctx, deb, bin, work)
	if err != nil {
		return err
	}
	progs, err := images.BuildPrograms(ctx, filepath.Join(work, "progs"))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "helper programs compiled after %s\n", time.Since(start).Round(time.Millisecond))
	var specs []images.Spec
	for _, s := range images.Catalogue() {
		if !(noBenchmark && s.Benchmark) {
			specs = append(specs, s)
		}
	}
	b := &images.Builder{Busybox: bb, Programs: progs}
	built, err := b.Build(ctx, specs)
	if err != nil {
		return err
	}
	targets, err := images.Plan(built, registry)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "images built after %s\n", time.Since(start).Round(time.Millisecond))
	if !dryRun {
		if err := images.Push(ctx, targets, insecure); err != nil {
			return err
		}
	}
	for _, t := range targets {
		fmt.Printf("%s -> %s@%s\n", strings.Join(t.Upstream, ", "), t.Mirror, t.Built.Digest)
	}
	for ref, why := range images.Unbuildable {
		fmt.Printf("not built: %s (%s)\n", ref, why)
	}
	verb := "pushed"
	if dryRun {
		verb = "built (dry run, nothing pushed)"
	}
	fmt.Fprintf(os.Stderr, "%s %d references (%d images) in %s\n", verb, len(targets), len(built), time.Since(start).Round(time.Millisecond))
	return nil
}

// busybox resolves the busybox binary from the flags, downloading the
// Debian package when neither is given.
func busybox(ctx context.Context, deb, bin, work string) (*images.Busybox, error) {
	if bin != "" {
		return &images.Busybox{Binary: bin}, nil
	}
	if deb == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(cache, "cri-rt", "critest-images")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if deb, err = images.DownloadBusyboxDeb(ctx, dir); err != nil {
			return nil, fmt.Errorf("%w (pass --busybox-deb PATH to use a downloaded package)", err)
		}
		fmt.Fprintln(os.Stderr, "using", deb)
	}
	return images.BusyboxFromDeb(ctx, deb, work)
}
