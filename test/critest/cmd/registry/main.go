// Command registry serves go-containerregistry's in-process OCI registry
// on a loopback address, as the offline stand-in for the upstream
// registries when running critest against cri-rt:
//
//	go run ./test/critest/cmd/registry --addr 127.0.0.1:5000 &
//	go run ./test/critest/cmd/build-images --registry 127.0.0.1:5000
//
// Manifests live in memory, so content is gone when it exits; --blobs
// keeps layer blobs on disk to bound memory use.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "loopback address to listen on")
	blobs := flag.String("blobs", "", "directory to store blobs in (default: memory)")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		// Nothing here is authenticated; keep it off the network.
		fmt.Fprintf(os.Stderr, "registry: --addr must be a loopback ip:port, got %q\n", *addr)
		os.Exit(2)
	}
	logger := log.New(io.Discard, "", 0)
	if *verbose {
		logger = log.New(os.Stderr, "registry: ", log.LstdFlags)
	}
	opts := []registry.Option{registry.Logger(logger)}
	if *blobs != "" {
		if err := os.MkdirAll(*blobs, 0o755); err != nil {
			log.Fatal(err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*blobs)))
	}
	srv := &http.Server{Addr: *addr, Handler: registry.New(opts...), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "registry: listening on http://%s\n", *addr)
	log.Fatal(srv.ListenAndServe())
}
