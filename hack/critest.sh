#!/usr/bin/env bash
# Runs the official CRI validation suite (critest, cri-tools v1.37.0)
# offline: a local registry on 127.0.0.1 holds every image critest pulls
# (built by test/critest/cmd/build-images), and cri-rt mirrors the public
# registries to it through hosts.toml, as an operator would. Prints a table,
# writes test/critest/RESULTS.md, and fails when a spec on the list of known
# passes (test/critest/known-passes.txt) does not pass.
#
#   hack/critest.sh                      # against a cri-rt started here
#   CRITEST_ENDPOINT=unix:///run/containerd/containerd.sock hack/critest.sh
#                                        # against another runtime (no gate);
#                                        # point its mirror at the printed registry
#   CRITEST_ARGS='--ginkgo.focus=Image' hack/critest.sh   # extra critest flags
#   CRITEST_UPDATE_KNOWN=1 hack/critest.sh                # record new passes
#   KEEP=1 hack/critest.sh               # keep the work dir for debugging
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/sbin:/usr/local/go/bin:$PATH

# Container monitors detach from the daemon; run under a subreaper so that
# they are reaped on machines whose PID 1 does not reap.
if [[ -z ${CRI_RT_REAPER:-} ]]; then
  exec go run ./hack/reaper -- "$0" "$@"
fi

cache=$(hack/tools.sh)
logs=bin/critest-logs
mkdir -p "$logs"

log() { printf '>>> %s\n' "$*" >&2; }

make --no-print-directory build >/dev/null

work=$(mktemp -d /tmp/cri-rt-critest.XXXXXX)
# Traversable like /run and /var/lib: user-namespaced pods run as non-root
# host ids that must reach their rootfs under this dir.
chmod 0711 "$work"
bridge=crirt-critest0
daemon_pid=""
registry_pid=""

cleanup() {
  set +e
  if [[ -n $daemon_pid ]]; then
    kill -TERM "$daemon_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  # What the runtime under test left behind is reported (a leak is a bug)
  # and then removed, so the machine stays clean either way.
  if [[ -d $work/state || -d $work/root ]]; then
    # Pods the suite left running (the daemon never stops containers when
    # it exits): kill and delete them through the OCI runtime, which also
    # removes their cgroups.
    rroot=$work/state/runtimes/runc
    if [[ -d $rroot ]]; then
      for id in $(runc --root "$rroot" list -q 2>/dev/null); do runc --root "$rroot" kill -a "$id" KILL 2>/dev/null; done
      sleep 0.5
      for id in $(runc --root "$rroot" list -q 2>/dev/null); do runc --root "$rroot" delete -f "$id" 2>/dev/null; done
    fi
    # Monitors and anything else started from this run's bundles.
    for pid in $(ps -eo pid=,args= | awk -v w="$work" 'index($0, w) {print $1}'); do
      [[ $pid == $$ ]] || kill -KILL "$pid" 2>/dev/null
    done
    mounts=$(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    if [[ -n $mounts ]]; then
      log "cleaning up $(wc -l <<<"$mounts") mount(s) left under $work"
      while read -r m; do umount -l "$m" 2>/dev/null; done <<<"$mounts"
    fi
  fi
  if ip link show "$bridge" >/dev/null 2>&1; then
    for v in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
    ip link del "$bridge" 2>/dev/null
  fi
  cp -f "$work"/*.log "$logs"/ 2>/dev/null
  if [[ ${KEEP:-} == 1 ]]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 2. The local registry.
port=$(free_port)
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
log "registry on 127.0.0.1:$port"

# 3. Every image critest pulls, under its upstream repository path.
go run ./test/critest/cmd/build-images --registry "127.0.0.1:$port" --no-benchmark >"$work/build-images.log"
log "pushed $(grep -c -- '->' "$work/build-images.log") image references"

# 4. Mirrors through hosts.toml, exactly as users configure them.
for host in registry.k8s.io k8s.gcr.io gcr.io docker.io quay.io public.ecr.aws; do
  mkdir -p "$work/certs.d/$host"
  cat >"$work/certs.d/$host/hosts.toml" <<TOML
server = "https://$host"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
TOML
done

# 5. A CNI network on a private subnet, on its own bridge.
mkdir -p "$work/net.d"
cat >"$work/net.d/10-critest.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "crirt-critest",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$work/cni-ipam", "ranges": [[{"subnet": "10.99.0.0/16"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON

endpoint=${CRITEST_ENDPOINT:-}
runtime_name=cri-rt
nri_args=()
if [[ -z $endpoint ]]; then
  # NRI on a socket of this run, not the node's: critest's NRI specs
  # connect their plugins to it. Its plugin synchronization specs hold a
  # plugin's Synchronize open for over 2s (NRI's default request timeout,
  # past which the plugin would be dropped).
  cat >"$work/config.toml" <<TOML
[cni]
conf_dir = "$work/net.d"
[registry]
config_path = "$work/certs.d"
[nri]
socket_path = "$work/nri.sock"
plugin_request_timeout = "10s"
TOML
  nri_args=(--nri-socket "$work/nri.sock")
  bin/cri-rt --config "$work/config.toml" --root "$work/root" --state "$work/state" \
    --address "$work/state/cri-rt.sock" --log-level debug >"$work/cri-rt.log" 2>&1 &
  daemon_pid=$!
  endpoint="unix://$work/state/cri-rt.sock"
  for _ in $(seq 100); do [[ -S $work/state/cri-rt.sock ]] && break; sleep 0.1; done
  "$cache/crictl" --runtime-endpoint "$endpoint" version >/dev/null
  log "cri-rt $(bin/cri-rt version | head -1 | cut -d' ' -f2) on $endpoint"
else
  runtime_name="$endpoint"
  log "testing $endpoint: mirror registry.k8s.io, k8s.gcr.io and gcr.io to http://127.0.0.1:$port"
fi

# 6. The whole suite. The digest-pinned image cannot exist offline; it is
# left to fail (and is named in RESULTS.md) rather than hidden.
log "running critest (log: $logs/critest.log)"
set +e
"$cache/critest" --runtime-endpoint "$endpoint" --image-endpoint "$endpoint" "${nri_args[@]}" \
  --ginkgo.junit-report="$work/junit.xml" --ginkgo.no-color --ginkgo.timeout=60m ${CRITEST_ARGS:-} >"$work/critest.log" 2>&1
critest_rc=$?
set -e
junit=$work/junit.xml
if [[ ! -s $junit ]]; then
  tail -50 "$work/critest.log" >&2
  log "critest produced no report (exit $critest_rc)"
  exit 1
fi

report_args=(--junit "$junit" --runtime "$runtime_name")
if [[ -z ${CRITEST_ENDPOINT:-} ]]; then
  report_args+=(--results test/critest/RESULTS.md)
  [[ ${CRITEST_UPDATE_KNOWN:-} == 1 ]] && report_args+=(--update-known)
else
  report_args+=(--known /dev/null --results "$logs/RESULTS-other.md")
fi
go run ./test/critest/cmd/report "${report_args[@]}"
