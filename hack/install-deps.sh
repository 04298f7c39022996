#!/usr/bin/env bash
# Installs what cri-rt needs on a fresh Debian machine: the OCI runtime, CNI
# plugins, iptables, and what the tests use (busybox, a local registry,
# htpasswd, openssl). Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  runc                        # OCI runtime (Debian's 1.1; a newer one is built below)
  containernetworking-plugins # CNI: bridge, host-local, portmap, loopback (/usr/lib/cni)
  iptables                    # used by the bridge and portmap plugins
  iproute2                    # ip netns, for tests
  busybox-static              # rootfs content of test images
  docker-registry             # local registry on 127.0.0.1 for tests
  apache2-utils               # htpasswd for registry auth tests
  openssl curl socat          # TLS fixtures, transfer floor, tests
  libseccomp-dev              # to build runc with seccomp
  make gcc
  systemd                     # systemd-analyze, to verify deploy/cri-rt.service (not booted)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian package starts a registry service where an init exists; the
# tests start their own on a free port instead.
if command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then
  systemctl disable --now docker-registry || true
fi

if ! command -v go >/dev/null; then
  echo "Go is required (expected at /usr/local/go/bin)" >&2
  exit 1
fi

# A current runc: 1.5 supports idmapped mounts for user namespaces. It goes to
# /usr/local/sbin, ahead of Debian's /usr/sbin/runc in PATH.
RUNC_VERSION=${RUNC_VERSION:-v1.5.2}
if ! /usr/local/sbin/runc --version 2>/dev/null | grep -q "runc version ${RUNC_VERSION#v}"; then
  echo "building runc ${RUNC_VERSION}"
  GOBIN=/usr/local/sbin CGO_ENABLED=1 go install -tags seccomp "github.com/opencontainers/runc@${RUNC_VERSION}"
fi
echo "dependencies ready: $(/usr/local/sbin/runc --version | head -1), $(go version)"
