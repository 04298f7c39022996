# cri-rt: `make run` installs what is needed and runs the daemon on its
# defaults; `make test` runs every test. See README.md.

export PATH := /usr/local/sbin:/usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/cri-rt/cri-rt/pkg/version.Version=$(VERSION)
BIN     := bin/cri-rt

.PHONY: all build deps run test test-unit vet critest bench-pull bench clean

all: build

# The daemon and its monitor (installed side by side; the daemon looks for
# cri-rt-monitor next to itself, then in PATH).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cri-rt
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/cri-rt-monitor ./cmd/cri-rt-monitor

deps:
	hack/install-deps.sh

# Runs the daemon on the embedded defaults (root /var/lib/cri-rt, state
# /run/cri-rt, socket /run/cri-rt/cri-rt.sock), or on /etc/cri-rt/config.toml.
run: deps build
	$(BIN)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-unit:
	$(GO) test -count=1 -timeout 30m ./...

# The CRI validation suite, offline, against cri-rt (see hack/critest.sh).
# Fails when a spec on test/critest/known-passes.txt does not pass.
# critest and crictl, built once into ~/.cache/cri-rt (tests use crictl).
tools:
	hack/tools.sh >/dev/null

critest: build
	hack/critest.sh

# Every test: formatting and vet, unit and integration tests (real runc, CNI,
# registry, overlay mounts; needs root), then the critest gate.
test: deps tools vet test-unit critest

# Image pull speed against its floors (transfer, gunzip) on a generated
# 530 MB image from a local registry; prints a table (needs root, make deps).
# Not part of test: it asserts nothing. More flags (go run ./hack/pullbench
# -h) in BENCH_ARGS, e.g. make bench-pull BENCH_ARGS="--runs 1 --markdown".
bench-pull: build
	$(GO) run ./hack/pullbench --cri-rt $(BIN) $(BENCH_ARGS)

# cri-rt against containerd's CRI plugin (Debian's 1.6, and v2.4.2 built
# once into ~/.cache/cri-rt) on the same runc, CNI and images: prints the
# table and writes docs/benchmarks.md (needs root; about 10 minutes). See
# hack/bench/bench.sh; flags in BENCH_ARGS, e.g. BENCH_ARGS="--iterations 10".
bench: deps build
	hack/bench/bench.sh $(BENCH_ARGS)

clean:
	rm -rf bin
