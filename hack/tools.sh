#!/usr/bin/env bash
# Builds critest and crictl (cri-tools) from the Go module proxy into a
# cache dir shared by every checkout, once per version. Prints the dir.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cri-rt/cri-tools-$CRI_TOOLS_VERSION"
mkdir -p "$cache"
if [[ ! -x $cache/critest || ! -x $cache/crictl ]]; then
  echo ">>> building critest and crictl $CRI_TOOLS_VERSION (cached in $cache)" >&2
  moddir=$(cd / && go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  (cd "$moddir" && go test -c -o "$cache/critest.tmp" ./cmd/critest && go build -o "$cache/crictl.tmp" ./cmd/crictl) >&2
  mv "$cache/critest.tmp" "$cache/critest"
  mv "$cache/crictl.tmp" "$cache/crictl"
fi
echo "$cache"
