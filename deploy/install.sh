#!/bin/sh
# install.sh installs cri-rt on a node: the daemon and its monitor, a default
# config, the systemd unit, crictl's config, kernel settings and (if missing)
# the CNI plugins. See docs/operators.md.
#
# It is idempotent: a second run with the same inputs changes no file (not
# even an mtime), so it can run from a DaemonSet on every pod start. Files it
# writes are recorded with their sha256 in /etc/cri-rt/install-manifest;
# --uninstall removes exactly those that are still as installed and keeps
# any an operator has edited. Configuration an operator wrote is never
# overwritten.
#
# POSIX sh on purpose: it also runs inside the installer image, whose only
# shell is busybox.
set -eu

usage() {
	cat <<'EOF'
Usage: install.sh [options]

  --from DIR          directory holding the built cri-rt and cri-rt-monitor
                      (default: bin/ beside this script, else ../bin)
  --prefix DIR        install binaries into DIR/bin (default /usr/local)
  --root-dir DIR      install into DIR as if it were / (like DESTDIR); paths
                      written into files stay the host's. systemctl, apt-get
                      and sysctl run only when DIR is /
  --systemd MODE      auto (default: when DIR/run/systemd/system exists),
                      yes or no: daemon-reload, enable --now, and restart
                      after an upgrade (containers keep running)
  --systemctl CMD     systemctl command to use (a DaemonSet passes
                      "nsenter -t 1 -m -- systemctl")
  --crictl MODE       keep (default): write /etc/crictl.yaml if absent, leave
                      an existing one alone (warn if it names another socket);
                      replace: also replace one naming another socket, saving
                      it as /etc/crictl.yaml.pre-cri-rt (restored on
                      --uninstall); skip: never touch it
  --cni MODE          auto (default): apt-get install containernetworking-plugins
                      if bridge/host-local/portmap/loopback are missing; skip
  --cni-bridge[=CIDR] write /etc/cni/net.d/10-cri-rt-bridge.conflist (bridge
                      cri-rt0, default 10.88.0.0/16) if no network config exists
  --no-sysctl         do not write /etc/modules-load.d/cri-rt.conf and
                      /etc/sysctl.d/99-cri-rt.conf (overlay, br_netfilter,
                      ip_forward, bridge-nf-call-iptables)
  --uninstall         remove what install.sh installed (edited files are kept)
  --purge             with --uninstall: also remove /var/lib/cri-rt, /run/cri-rt,
                      everything left in /etc/cri-rt, and packages it installed
  -h, --help          this text
EOF
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}
say() { echo "install.sh: $*"; }

here=$(cd "$(dirname "$0")" && pwd)
FROM=
PREFIX=/usr/local
ROOT=/
SYSTEMD=auto
SYSTEMCTL=systemctl
CRICTL=keep
CNI=auto
CNI_BRIDGE=
SYSCTL=yes
UNINSTALL=no
PURGE=no

# Options take "--opt value" or "--opt=value". needval takes the value from
# "=value" or else the next argument (then shifted away with the option).
needval() {
	if [ -z "$val" ]; then
		[ $# -ge 2 ] || die "$opt needs a value"
		val=$2
		shift_extra=1
	fi
}
while [ $# -gt 0 ]; do
	opt=$1
	val=
	shift_extra=0
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		;;
	esac
	case $opt in
	--from) needval "$@" && FROM=$val ;;
	--prefix) needval "$@" && PREFIX=$val ;;
	--root-dir) needval "$@" && ROOT=$val ;;
	--systemd) needval "$@" && SYSTEMD=$val ;;
	--systemctl) needval "$@" && SYSTEMCTL=$val ;;
	--crictl) needval "$@" && CRICTL=$val ;;
	--cni) needval "$@" && CNI=$val ;;
	--cni-bridge) CNI_BRIDGE=${val:-10.88.0.0/16} ;;
	--no-sysctl) SYSCTL=no ;;
	--uninstall) UNINSTALL=yes ;;
	--purge) PURGE=yes ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option $1 (--help lists them)" ;;
	esac
	shift
	if [ "$shift_extra" = 1 ]; then shift; fi
done

case $SYSTEMD in auto | yes | no) ;; *) die "--systemd must be auto, yes or no" ;; esac
case $CRICTL in keep | replace | skip) ;; *) die "--crictl must be keep, replace or skip" ;; esac
case $CNI in auto | skip) ;; *) die "--cni must be auto or skip" ;; esac
case $ROOT in /*) ;; *) die "--root-dir must be an absolute path" ;; esac
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path" ;; esac
[ "$PURGE" = no ] || [ "$UNINSTALL" = yes ] || die "--purge goes with --uninstall"
ROOT=${ROOT%/}
PREFIX=${PREFIX%/}

# Host paths (as the running system sees them); R maps one into the root dir.
R() { printf '%s%s' "$ROOT" "$1"; }
BIN_DIR=$PREFIX/bin
UNIT=/etc/systemd/system/cri-rt.service
CONF_DIR=/etc/cri-rt
CONF=$CONF_DIR/config.toml
MANIFEST=$CONF_DIR/install-manifest
CRICTL_YAML=/etc/crictl.yaml
CRICTL_BACKUP=/etc/crictl.yaml.pre-cri-rt
MODULES_FILE=/etc/modules-load.d/cri-rt.conf
SYSCTL_FILE=/etc/sysctl.d/99-cri-rt.conf
CNI_CONF_DIR=/etc/cni/net.d
CNI_BRIDGE_CONF=$CNI_CONF_DIR/10-cri-rt-bridge.conflist
CNI_BIN_DIRS="/opt/cni/bin /usr/lib/cni"
CNI_PACKAGE=containernetworking-plugins
DATA_DIRS="/var/lib/cri-rt /run/cri-rt"

# Only a real root may run host-wide tools; a scratch root stays a tree of files.
on_host() { [ -z "$ROOT" ]; }

systemd_active() {
	case $SYSTEMD in
	yes) return 0 ;;
	no) return 1 ;;
	esac
	[ -d "$(R /run/systemd/system)" ]
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/cri-rt-install.XXXXXX")
# sh runs an INT/TERM trap and carries on, so those exit (running the EXIT one).
trap 'rm -rf "$tmpdir"' EXIT
trap 'exit 130' INT TERM
NEW_MANIFEST=$tmpdir/manifest
: >"$NEW_MANIFEST"
CHANGED=no     # any file written
RESTART=no     # a file the running daemon uses changed
UNIT_CHANGED=no

# record notes a file as installed by us, with its current checksum.
record() { echo "file $(sha "$(R "$1")") $1" >>"$NEW_MANIFEST"; }

# recorded_sha prints the checksum the previous run recorded for a path.
recorded_sha() {
	[ -f "$(R "$MANIFEST")" ] || return 0
	awk -v p="$1" '$1 == "file" && $3 == p { print $2 }' "$(R "$MANIFEST")"
}

# ours: the file exists and is byte for byte what a previous run wrote, so
# nobody has edited it since and it may be updated or removed.
ours() {
	[ -f "$(R "$1")" ] || return 1
	want=$(recorded_sha "$1")
	[ -n "$want" ] && [ "$want" = "$(sha "$(R "$1")")" ]
}

# same: the installed file has exactly this content and mode.
same() {
	[ -f "$(R "$2")" ] && cmp -s "$1" "$(R "$2")" &&
		[ "$(stat -c %a "$(R "$2")")" = "$3" ]
}

# put writes src to dst atomically (a rename: a running binary is replaced,
# not rewritten in place, which would fail with ETXTBSY or corrupt it).
put() {
	src=$1 dst=$(R "$2") mode=$3
	mkdir -p "$(dirname "$dst")"
	cp "$src" "$dst.cri-rt-new"
	chmod "$mode" "$dst.cri-rt-new"
	mv -f "$dst.cri-rt-new" "$dst"
	CHANGED=yes
}

# install_file: files that belong to cri-rt (binaries, the unit): always
# brought to the shipped content.
install_file() {
	if same "$1" "$2" "$3"; then
		say "unchanged $2"
	else
		put "$1" "$2" "$3"
		say "installed $2"
		[ "${4:-}" = restart ] && RESTART=yes
	fi
	record "$2"
}

# install_conffile: configuration. Written when absent; updated only while
# it is still what we wrote; an operator's file (or an edited one of ours)
# is kept as it is and not recorded, so --uninstall keeps it too.
install_conffile() {
	if same "$1" "$2" "$3"; then
		say "unchanged $2"
		ours "$2" && record "$2"
		return 0
	fi
	if [ -e "$(R "$2")" ] && ! ours "$2"; then
		say "keeping $2 (not written by install.sh, or edited since)"
		return 0
	fi
	put "$1" "$2" "$3"
	say "installed $2"
	record "$2"
}

find_from() {
	if [ -n "$FROM" ]; then
		echo "$FROM"
	elif [ -x "$here/bin/cri-rt" ]; then
		echo "$here/bin"
	else
		echo "$here/../bin"
	fi
}

# socket_path reads grpc.address from the effective config (an operator may
# have moved the socket); the default when the config cannot be read.
socket_path() {
	addr=$("$FROM/cri-rt" --config "$(R "$CONF")" config dump 2>/dev/null |
		awk '/^\[/ { s = $0 } s == "[grpc]" && $1 == "address" { sub(/^[^=]*= */, ""); gsub(/^'\''|'\''$/, ""); print; exit }') || true
	echo "${addr:-/run/cri-rt/cri-rt.sock}"
}

missing_cni_plugins() {
	missing=
	for p in bridge host-local portmap loopback; do
		found=no
		for d in $CNI_BIN_DIRS; do
			[ -x "$(R "$d/$p")" ] && found=yes
		done
		[ $found = yes ] || missing="$missing $p"
	done
	echo "${missing# }"
}

# commit_manifest replaces the manifest only when its content changed, so
# an unchanged install leaves every file's mtime alone.
commit_manifest() {
	if [ -f "$(R "$MANIFEST")" ] && cmp -s "$NEW_MANIFEST" "$(R "$MANIFEST")"; then
		return 0
	fi
	mkdir -p "$(R "$CONF_DIR")"
	cp "$NEW_MANIFEST" "$(R "$MANIFEST").cri-rt-new"
	chmod 644 "$(R "$MANIFEST").cri-rt-new"
	mv -f "$(R "$MANIFEST").cri-rt-new" "$(R "$MANIFEST")"
}

do_install() {
	FROM=$(find_from)
	for b in cri-rt cri-rt-monitor; do
		[ -x "$FROM/$b" ] || die "$FROM/$b not found: run make build, or pass --from DIR"
	done
	[ -f "$here/cri-rt.service" ] || die "$here/cri-rt.service not found"
	say "installing $("$FROM/cri-rt" version | head -n 1) into ${ROOT:-/} (binaries in $BIN_DIR)"

	# The daemon finds cri-rt-monitor next to its own executable, so both
	# go to the same directory.
	install_file "$FROM/cri-rt" "$BIN_DIR/cri-rt" 755 restart
	install_file "$FROM/cri-rt-monitor" "$BIN_DIR/cri-rt-monitor" 755 restart

	# The config: a complete, commented default, only when none exists.
	if [ -e "$(R "$CONF")" ]; then
		if ours "$CONF"; then
			record "$CONF"
			say "unchanged $CONF"
		else
			say "keeping $CONF (the operator's)"
		fi
	else
		"$FROM/cri-rt" config default >"$tmpdir/config.toml"
		put "$tmpdir/config.toml" "$CONF" 644
		record "$CONF"
		say "installed $CONF (cri-rt config default)"
	fi

	# The unit, with ExecStart pointing at the binary of this prefix.
	sed "s#/usr/local/bin/cri-rt#$BIN_DIR/cri-rt#g" "$here/cri-rt.service" >"$tmpdir/cri-rt.service"
	if ! same "$tmpdir/cri-rt.service" "$UNIT" 644; then
		UNIT_CHANGED=yes
		RESTART=yes
	fi
	install_file "$tmpdir/cri-rt.service" "$UNIT" 644

	sock=$(socket_path)
	printf '# Written by cri-rt install.sh: crictl talks to cri-rt.\nruntime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 10\n' \
		"$sock" "$sock" >"$tmpdir/crictl.yaml"
	crictl_yaml "$sock"

	if [ "$SYSCTL" = yes ]; then
		# overlay: container root filesystems; br_netfilter: iptables
		# sees bridged pod traffic (Services between pods of one node).
		printf '# Written by cri-rt install.sh: modules cri-rt and kube-proxy need.\noverlay\nbr_netfilter\n' >"$tmpdir/modules"
		printf '# Written by cri-rt install.sh: pod traffic is forwarded and bridged\n# pod traffic passes iptables (kube-proxy Services).\nnet.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n' >"$tmpdir/sysctl"
		before=$CHANGED
		CHANGED=no
		install_conffile "$tmpdir/modules" "$MODULES_FILE" 644
		install_conffile "$tmpdir/sysctl" "$SYSCTL_FILE" 644
		if [ $CHANGED = yes ] && on_host; then
			for m in overlay br_netfilter; do modprobe "$m" 2>/dev/null || say "modprobe $m failed (built in, or not available)"; done
			sysctl -q -p "$SYSCTL_FILE" || say "sysctl -p $SYSCTL_FILE failed; cri-rt check will say what is missing"
		fi
		if [ $before = yes ]; then CHANGED=yes; fi
	fi

	cni_plugins
	if [ -n "$CNI_BRIDGE" ]; then
		cni_bridge
	fi

	commit_manifest
	if systemd_active; then
		start_service
	elif [ $CHANGED = yes ]; then
		say "no systemd ($(R /run/systemd/system) missing): start $BIN_DIR/cri-rt --config $CONF yourself"
	fi
	if [ $CHANGED = no ]; then
		say "nothing changed"
	fi
}

# crictl_yaml: see --crictl in the usage text. An existing file that already
# names our socket is fine whoever wrote it.
crictl_yaml() {
	[ "$CRICTL" = skip ] && return 0
	f=$(R "$CRICTL_YAML")
	if [ -e "$f" ] && ! ours "$CRICTL_YAML"; then
		if grep -Eq "^runtime-endpoint: *(unix://)?$1 *\$" "$f"; then
			say "unchanged $CRICTL_YAML (already names $1)"
			return 0
		fi
		if [ "$CRICTL" = keep ]; then
			say "keeping $CRICTL_YAML: it names another runtime; use crictl --runtime-endpoint unix://$1, or rerun with --crictl replace"
			return 0
		fi
		if [ -e "$(R "$CRICTL_BACKUP")" ]; then
			die "$CRICTL_BACKUP already exists; move it away first"
		fi
		mv "$f" "$(R "$CRICTL_BACKUP")"
		say "saved the previous $CRICTL_YAML as $CRICTL_BACKUP"
	fi
	install_conffile "$tmpdir/crictl.yaml" "$CRICTL_YAML" 644
	# The backup is restored by --uninstall once our file is gone.
	if [ -e "$(R "$CRICTL_BACKUP")" ]; then
		echo "backup $CRICTL_BACKUP $CRICTL_YAML" >>"$NEW_MANIFEST"
	fi
}

# cni_plugins installs Debian's plugins (into /usr/lib/cni, one of the
# default cni.bin_dirs) when the standard ones are missing; only on a real
# root, since apt-get cannot install into a scratch tree.
cni_plugins() {
	if [ -f "$(R "$MANIFEST")" ] && grep -q "^pkg $CNI_PACKAGE\$" "$(R "$MANIFEST")"; then
		echo "pkg $CNI_PACKAGE" >>"$NEW_MANIFEST"
	fi
	# --cni skip: not even looked for (a DaemonSet does not mount them).
	[ "$CNI" = skip ] && return 0
	missing=$(missing_cni_plugins)
	[ -z "$missing" ] && return 0
	if ! on_host || ! command -v apt-get >/dev/null 2>&1; then
		say "CNI plugins missing ($missing): install $CNI_PACKAGE on the host, or put the plugins in /opt/cni/bin"
		return 0
	fi
	say "installing $CNI_PACKAGE (missing: $missing)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$CNI_PACKAGE" >/dev/null
	echo "pkg $CNI_PACKAGE" >>"$NEW_MANIFEST"
	CHANGED=yes
}

# cni_bridge writes a single-node bridge network, unless another network
# config exists (the first file by name wins, so a second one would either
# shadow the cluster's network or be ignored).
cni_bridge() {
	for f in "$(R "$CNI_CONF_DIR")"/*.conflist "$(R "$CNI_CONF_DIR")"/*.conf "$(R "$CNI_CONF_DIR")"/*.json; do
		[ -e "$f" ] || continue
		[ "$f" = "$(R "$CNI_BRIDGE_CONF")" ] && continue
		say "not writing $CNI_BRIDGE_CONF: $f exists"
		ours "$CNI_BRIDGE_CONF" && record "$CNI_BRIDGE_CONF"
		return 0
	done
	cat >"$tmpdir/bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "cri-rt",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cri-rt0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$CNI_BRIDGE"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
	install_conffile "$tmpdir/bridge.conflist" "$CNI_BRIDGE_CONF" 644
}

# start_service: enable --now is a no-op when already enabled and running;
# a running daemon is restarted only when its binaries or unit changed.
# Restarting never stops containers (KillMode=process).
start_service() {
	if [ $UNIT_CHANGED = yes ]; then
		$SYSTEMCTL daemon-reload
	fi
	was_active=no
	$SYSTEMCTL is-active -q cri-rt.service && was_active=yes
	$SYSTEMCTL enable --now cri-rt.service
	if [ $was_active = yes ] && [ $RESTART = yes ]; then
		say "restarting cri-rt for the new version (containers keep running)"
		$SYSTEMCTL restart cri-rt.service
	fi
}

do_uninstall() {
	if systemd_active && [ -e "$(R "$UNIT")" ]; then
		$SYSTEMCTL disable --now cri-rt.service || true
		say "stopped cri-rt; containers it started keep running (remove pods first: crictl rmp -fa)"
	fi
	if [ ! -f "$(R "$MANIFEST")" ]; then
		say "no $MANIFEST: nothing installed by install.sh"
	else
		while read -r kind a b; do
			case $kind in
			file)
				if [ ! -e "$(R "$b")" ]; then
					:
				elif [ "$(sha "$(R "$b")")" = "$a" ] || [ $PURGE = yes ]; then
					rm -f "$(R "$b")"
					say "removed $b"
				else
					say "keeping $b (edited since install)"
				fi
				;;
			backup)
				if [ -e "$(R "$a")" ] && [ ! -e "$(R "$b")" ]; then
					mv "$(R "$a")" "$(R "$b")"
					say "restored $b"
				fi
				;;
			pkg)
				if [ $PURGE = yes ] && on_host; then
					DEBIAN_FRONTEND=noninteractive apt-get remove -y -q "$a" >/dev/null && say "removed package $a"
				else
					say "left package $a installed (--purge removes it)"
				fi
				;;
			esac
		done <"$(R "$MANIFEST")"
		rm -f "$(R "$MANIFEST")"
	fi
	if systemd_active; then
		$SYSTEMCTL daemon-reload || true
	fi
	if [ $PURGE = yes ]; then
		for d in $DATA_DIRS; do
			# Data under a live mount (a running container's rootfs, a
			# pinned netns) must not be deleted from under it.
			if awk -v d="$(R "$d")" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
				die "$(R "$d") has mounts (running pods?): remove pods (crictl rmp -fa) and stop cri-rt first"
			fi
		done
		for d in $DATA_DIRS $CONF_DIR; do
			if [ -e "$(R "$d")" ]; then
				rm -rf "$(R "$d")"
				say "purged $d"
			fi
		done
	fi
	rmdir "$(R "$CONF_DIR")" 2>/dev/null || true
}

if [ $UNINSTALL = yes ]; then
	do_uninstall
else
	do_install
fi
