#!/usr/bin/env bash
# make bench: cri-rt against containerd's CRI plugin on this machine (see
# hack/bench/main.go). Installs what it compares with, once:
#   - Debian's containerd package (1.6, with its own shim in /usr/bin);
#   - containerd v2.4.2 and its runc shim, built from the Go module proxy
#     with the flags of containerd's own Makefile (daemon stripped; shim
#     static, CGO_ENABLED=0, stripped), cached in ~/.cache/cri-rt;
# then runs the benchmark under hack/reaper (shims and monitors detach and
# this machine's PID 1 does not reap), prints the table and writes it to
# docs/benchmarks.md. Arguments go to the benchmark (go run ./hack/bench -h).
# Expects make deps and make build to have run (make bench does both).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/sbin:/usr/local/go/bin:$PATH

log() { printf '>>> %s\n' "$*" >&2; }

if [[ $(id -u) != 0 ]]; then
  echo "make bench needs root (runtimes, mounts, network namespaces)" >&2
  exit 1
fi

if ! dpkg-query -W -f='${Status}' containerd 2>/dev/null | grep -q "install ok installed"; then
  log "installing Debian's containerd"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends containerd >/dev/null
fi
# The package enables a service where an init runs one; the benchmark
# starts its own daemons on their own directories instead.
if command -v systemctl >/dev/null && systemctl is-active -q containerd 2>/dev/null; then
  systemctl disable --now containerd || true
fi

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cri-rt/containerd-$CONTAINERD_VERSION"
stamp="$CONTAINERD_VERSION; daemon: go install -trimpath -ldflags '-s -w'; shim: CGO_ENABLED=0 go install -trimpath -ldflags '-s -w -extldflags -static'"
if [[ ! -x $cache/containerd || ! -x $cache/containerd-shim-runc-v2 || $(cat "$cache/BUILD" 2>/dev/null) != "$stamp" ]]; then
  log "building containerd $CONTAINERD_VERSION (cached in $cache)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd / && GOBIN=$tmp go install -trimpath -ldflags '-s -w' "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION")
  (cd / && GOBIN=$tmp CGO_ENABLED=0 go install -trimpath -ldflags '-s -w -extldflags -static' "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION")
  mkdir -p "$cache"
  mv -f "$tmp/containerd" "$tmp/containerd-shim-runc-v2" "$cache/"
  echo "$stamp" >"$cache/BUILD"
fi

go build -o bin/bench ./hack/bench
command="make bench"
if (($#)); then command+=" BENCH_ARGS='$*'"; fi
exec go run ./hack/reaper -- bin/bench --cri-rt bin/cri-rt --containerd24 "$cache/containerd" \
  --out docs/benchmarks.md --command "$command" "$@"
