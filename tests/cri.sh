#!/bin/bash
# CRI suite: what the kubelet does with k8s/parent.yaml and k8s/child.yaml,
# replayed through containerd's CRI plugin on a CNI bridge with the portmap
# plugin for hostPorts, as on a kubeadm-style node:
#  1. a containerd with CRI (A, the node), with its own root, state, socket,
#     runc root and CNI configuration in the work directory; a sandbox
#     ("pause") image built here offline; `quinistry export` imported into
#     its k8s.io namespace;
#  2. the parent pod from parent.yaml (imagePullPolicy Never), probed as the
#     kubelet probes it (GET pod-IP:8080/v2/ within the manifest's timeout);
#  3. a second containerd with CRI (B) whose image store lacks the layer
#     (A cannot: containerd fetches no layer whose snapshot it holds, and
#     the running parent holds it): PullImage
#     localhost:<parent hostPort>/quinistry:latest with no registry
#     configuration, so config and layer come through the hostPort (the
#     parent's log must show the layer's GET), then the child pod from
#     child.yaml on it (imagePullPolicy Always);
#  4. PullImage localhost:<child hostPort>/quinistry:latest on A;
#  5. both containers' /proc/PID/status (uid, gid, CapEff, NoNewPrivs,
#     Seccomp), a write to their / and their cgroup limits;
#  6. StopContainer with terminationGracePeriodSeconds then StopPodSandbox
#     (the kubelet's order): exit 0 within the grace period; then
#     RemovePodSandbox;
#  7. clean-up, checked: pods, netns, bridge, CNI iptables chains and the
#     jumps to them, containerd state, mounts, cgroups (also after a
#     failure: the EXIT hook does the same).
# Every value comes from the manifests (tests/cri/cri.py facts); the CRI
# client is tests/cri/cri.py with the minimal tests/cri/cri.proto.
# Traffic goes to 127.0.0.1 and to the pods' addresses on our bridge only.
#
# Needs root, containerd/ctr/runc, Debian's containernetworking-plugins,
# iptables, iproute2, protoc, /usr/bin/python3 with grpc, protobuf and
# yaml, musl-gcc. With CI=true a missing piece is `not ok`, else `skip`.
# KEEP_TMP=1 keeps the work directory (logs, configs) for a look.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh || exit 1
# qt_umount_under and qt_d_kill_pidfile, without running anything.
. tests/daemons.sh '' || exit 1

PY=/usr/bin/python3 # Debian's, with python3-grpcio (python3 may be a shim)
PAUSE_REF=localhost/qt-pause:1
NET=qt-cri-$$
BR=qtcri$$ # the CNI bridge (at most 15 characters)
SUBNET= # the pods' /24, one that no route of this host covers
CG_ROOT=/qt-cri-$$ # cgroup parent of our pods, in every hierarchy
CNI_BIN=
STARTED=()          # containerd instances started (A, B)
CHAINS_BEFORE=" "   # CNI-* chains that existed before us (not ours)
# Our network's name in a CNI rule's comment (name: \"NET\" id: ...),
# as an extended regular expression for iptables -S lines.
OURS="name: [^ ]*\"${NET}[^0-9 ]* id:"
FWD_BEFORE=
NETNS_BEFORE= # the names in ip netns before us

# ---------------------------------------------------------------- helpers

cri() { # instance args...: our CRI client against instance A or B
	local i=$1; shift
	PYTHONPATH=$T/py timeout "${CRI_TIMEOUT:-300}" "$PY" tests/cri/cri.py \
		-s "$T/$i/containerd.sock" "$@"
}
manifest() { PYTHONPATH=$T/py "$PY" tests/cri/cri.py "$@"; }
val() { sed -n "s/^$1 //p" "$2" | head -n 1; } # key file
fact() { local v=$1$2; echo "${!v}"; } # P_ or C_, name: from the manifests
# verdict STATUS WORDS...: check_status with the words as one description.
verdict() { local s=$1; shift; check_status "$s" "$*"; }
ctr_() { local i=$1; shift; timeout 120 ctr -a "$T/$i/containerd.sock" -n k8s.io "$@"; }
show() { sed 's/^/# /' "$@" | tail -n 20; } # the end of a log, as comments

# The CNI-* chains of the nat, filter and mangle tables, "table chain" a line.
cni_chains() {
	local t
	for t in nat filter mangle; do
		iptables -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" && $2 ~ /^CNI-/ { print t, $2 }'
	done
}

# ---------------------------------------------------------------- clean-up

# delete_rules TABLE PATTERN: delete the rules that match the extended
# regular expression (as iptables -S prints them) and print their targets.
delete_rules() {
	local rule
	iptables -t "$1" -S 2>/dev/null | grep '^-A ' | grep -E -- "$2" |
		while read -r rule; do
			# The comments hold quotes: the line is shell words.
			eval "iptables -t $1 ${rule/-A /-D }" 2>/dev/null
			sed -n 's/.* -j \([^ ]*\).*/\1/p' <<<"$rule"
		done
}

# CNI's iptables state of our pods, found by our network's name in the
# rules' comments (so another CNI user's pods keep theirs): the jumps
# from the nat chains to each pod's chains, and those chains. Then
# portmap's global chains and the jumps to them, which it leaves behind
# when the last pod goes, unless a pod of another network still uses them.
remove_cni_chains() {
	local t c
	for t in nat filter mangle; do
		for c in $(delete_rules "$t" "$OURS" | grep '^CNI-' | sort -u); do
			iptables -t "$t" -F "$c" 2>/dev/null
			iptables -t "$t" -X "$c" 2>/dev/null
		done
	done
	iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A ' && return 0
	delete_rules nat ' -j CNI-HOSTPORT-(DNAT|MASQ|SETMARK)( |$)' >/dev/null
	for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
		iptables -t nat -F "$c" 2>/dev/null
		iptables -t nat -X "$c" 2>/dev/null
	done
}

# Our runtimes' leftovers when the CRI calls could not remove them: runc
# containers (this also removes their cgroups) and the shims.
kill_leftovers() { # instance
	local d=$T/$1 r id p
	# The shim keeps runc's state in Root/<containerd namespace>.
	for r in "$d"/runc/*/; do
		[ -d "$r" ] || continue
		for id in $(runc --root "$r" list -q 2>/dev/null); do
			timeout 20 runc --root "$r" delete --force "$id" >/dev/null 2>&1
		done
	done
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "-address $d/containerd.sock " &&
			kill -KILL "${p#/proc/}" 2>/dev/null
	done
}

# Our pods' cgroups, deepest first (rmdir only: a cgroup that still has
# processes stays, and the check below says so).
remove_cgroups() {
	local h
	for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
		[ -d "$h$CG_ROOT" ] || continue
		find "$h$CG_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
}

cri_cleanup() {
	local i
	for i in "${STARTED[@]}"; do
		# Stopping the pods through CRI lets CNI take them off the network.
		[ -S "$T/$i/containerd.sock" ] && CRI_TIMEOUT=60 cri "$i" clean >/dev/null 2>&1
	done
	for i in "${STARTED[@]}"; do
		qt_d_kill_pidfile "$T/$i/containerd.pid" 10
		kill_leftovers "$i"
	done
	qt_umount_under "$T"
	ip link del "$BR" 2>/dev/null
	remove_cni_chains
	remove_cgroups
	# The bridge plugin turns on IPv4 forwarding for the whole host.
	[ -n "$FWD_BEFORE" ] && echo "$FWD_BEFORE" >/proc/sys/net/ipv4/ip_forward
	STARTED=()
}

at_exit cri_cleanup

# ---------------------------------------------------------------- needs

needs() {
	local t d
	if [ "$(id -u)" != 0 ]; then missing "cri: needs root" "not root"; return 1; fi
	for t in containerd ctr runc containerd-shim-runc-v2 iptables ip ss protoc musl-gcc curl; do
		have "$t" || { missing "cri: needs $t" "$t missing"; return 1; }
	done
	for d in /usr/lib/cni /opt/cni/bin; do
		[ -x "$d/bridge" ] && [ -x "$d/host-local" ] && [ -x "$d/portmap" ] &&
			[ -x "$d/loopback" ] && { CNI_BIN=$d; break; }
	done
	[ -n "$CNI_BIN" ] || {
		missing "cri: needs the CNI plugins bridge, host-local, portmap, loopback" \
			"containernetworking-plugins missing"
		return 1
	}
	if ! "$PY" -c 'import grpc, google.protobuf, yaml' 2>/dev/null; then
		missing "cri: needs $PY with grpc, protobuf and yaml" \
			"python3-grpcio, python3-protobuf or python3-yaml missing"
		return 1
	fi
	if [ ! -x "$Q" ]; then nok "cri: $Q is built"; return 1; fi
	if ! is_static "$Q"; then
		skip "cri: $Q is dynamically linked (an image of it cannot run)"
		return 1
	fi
	# Our bridge's subnet must not overlap a route of this host (another
	# run of this test has one for its bridge, for example).
	local x
	for x in $(seq 7 38); do
		SUBNET=10.231.$x.0/24
		! ip -4 route show match "$SUBNET" | grep -qv '^default' &&
			[ -z "$(ip -4 route show root "$SUBNET")" ] && return 0
	done
	nok "cri: a /24 in 10.231.0.0/16 is free for the pod network"
	return 1
}

# ---------------------------------------------------------------- set-up

# protoc's Python module for cri.proto, the pause image, the facts.
prepare() {
	mkdir -p "$T/py" "$T/pause" "$T/logs"
	if ! protoc -I tests/cri --python_out="$T/py" tests/cri/cri.proto 2>"$T/protoc.err"; then
		show "$T/protoc.err"; nok "cri: protoc compiles tests/cri/cri.proto"; return 1
	fi
	if ! musl-gcc -std=c99 -Wall -Wextra -pedantic -Os -static -s \
		-o "$T/pause/pause" tests/cri/pause.c 2>"$T/pause.err" ||
		! "$PY" tests/cri/pack_pause.py "$T/pause/pause" "$PAUSE_REF" \
			"$T/pause.tar" 2>>"$T/pause.err"; then
		show "$T/pause.err"; nok "cri: build the pause image offline"; return 1
	fi
	ok "cri: pause image built offline ($(stat -c %s "$T/pause/pause")-byte static binary, $PAUSE_REF)"
	# P_IMAGE=..., C_IMAGE=... and so on: the parent's and the child's values.
	if ! manifest facts k8s/parent.yaml >"$T/parent.facts" ||
		! manifest facts k8s/child.yaml >"$T/child.facts"; then
		nok "cri: read k8s/parent.yaml and k8s/child.yaml"; return 1
	fi
	# shellcheck source=/dev/null
	. <(sed 's/^/P_/' "$T/parent.facts"; sed 's/^/C_/' "$T/child.facts")
	if ! "$Q" export -o "$T/quinistry.tar" 2>"$T/export.err"; then
		show "$T/export.err"; nok "cri: quinistry export"; return 1
	fi
}

# A bridge network with host-local IPAM and portmap chained after it, as
# containerd's and kubeadm's examples set it up (portmap's snat is on by
# default: that is what makes 127.0.0.1 reach a hostPort).
write_cni_conf() {
	mkdir -p "$T/cni" "$T/ipam"
	cat >"$T/cni/10-$NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BR",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$T/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

# containerd with the CRI plugin, everything of its own under $T/I:
# restrict_oom_score_adj because root here lacks CAP_SYS_RESOURCE (runc
# cannot lower the sandbox's oom_score_adj), runc's own Root, the pods'
# network namespaces under its state directory.
start_containerd() { # instance
	local d=$T/$1 i=0
	mkdir -p "$d"
	cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"

[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"
  [plugins."io.containerd.metadata.v1.bolt"]
    content_sharing_policy = "isolated"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_REF"
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN"
      conf_dir = "$T/cni"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = "$d/runc"
EOF
	STARTED+=("$1")
	setsid sh -c 'echo $$ >"$1"; exec containerd --config "$2"' sh \
		"$d/containerd.pid" "$d/config.toml" </dev/null >"$d/containerd.log" 2>&1 &
	while [ $i -lt 150 ]; do
		cri "$1" version >"$d/version" 2>/dev/null && break
		sleep 0.2
		i=$((i + 1))
	done
	if ! cri "$1" wait-ready 30 >/dev/null 2>"$d/ready.err"; then
		show "$d/containerd.log" "$d/ready.err"
		nok "cri: containerd $1 answers CRI and is ready (runtime and network)"
		return 1
	fi
	local v=$d/version
	ok "cri: containerd $1 with CRI ready on its own socket" \
		"($(val runtime "$v") $(val version "$v"), CRI $(val api "$v"))"
	if ! ctr_ "$1" images import "$T/pause.tar" >"$d/pause-import.out" 2>&1 ||
		! cri "$1" image-status "$PAUSE_REF" >/dev/null 2>&1; then
		show "$d/pause-import.out"; nok "cri: import $PAUSE_REF into $1's k8s.io namespace"
		return 1
	fi
}

# ---------------------------------------------------------------- checks

log_digest() { # log kind: a digest the server logged at start-up
	sed -n "s/^.* [FP] *$2 *\(sha256:[0-9a-f]\{64\}\).*/\1/p" "$1" | head -n 1
}

# run_pod INSTANCE MANIFEST NAME [cri.py run options]: sets POD_OUT.
run_pod() {
	local i=$1 m=$2 n=$3; shift 3
	POD_OUT=$T/$n.run
	if ! cri "$i" run "$m" --log-root "$T/logs" --cgroup-root "$CG_ROOT" "$@" \
		>"$POD_OUT" 2>"$T/$n.err"; then
		show "$POD_OUT" "$T/$n.err"
		nok "cri: $n pod from $m runs on $i (RunPodSandbox, CreateContainer, StartContainer)"
		return 1
	fi
	ok "cri: $n pod from $m runs on $i: pod IP $(val pod_ip "$POD_OUT")," \
		"image pulled: $(val pulled "$POD_OUT"), state $(val state "$POD_OUT")"
}

# ready NAME MANIFEST TIMEOUT: the readiness probe on the pod IP (kubelet-style).
ready() {
	local n=$1 ip out=$T/$1.probe
	ip=$(val pod_ip "$T/$n.run")
	if manifest probe "$2" "$ip" >"$out" 2>&1; then
		ok "cri: $n ready: kubelet probe GET $(val url "$out") ->" \
			"$(val code "$out") in $(val ms "$out") ms (timeout ${3}s," \
			"try $(val attempts "$out"))"
	else
		show "$(val log "$T/$n.run")"; show "$out"
		nok "cri: $n ready: kubelet probe on $ip"
		return 1
	fi
}

# host_port NAME PORT: the node's 127.0.0.1:PORT reaches the pod (portmap).
host_port() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 5 \
		"http://127.0.0.1:$2/v2/" 2>/dev/null)
	[ "$code" = 200 ]
	verdict $? "cri: $1 answers on the node's 127.0.0.1:$2 through its" \
		"hostPort (portmap DNAT) -> $code"
}

# security NAME MANIFEST-PREFIX: what /proc says about the container.
security() {
	local n=$1 p=$2 pid st uid gid capeff capbnd nnp seccomp err rootopts
	local user group mem quota period oom cg run=$T/$1.run
	pid=$(val pid "$run")
	user=$(fact "$p" RUN_AS_USER) group=$(fact "$p" RUN_AS_GROUP)
	if [ -z "$pid" ] || ! st=$(cat "/proc/$pid/status" 2>/dev/null); then
		nok "cri: $n's process (pid ${pid:-?}) found"
		return 1
	fi
	# Real, effective, saved and file-system IDs.
	uid=$(awk '/^Uid:/ { print $2 "/" $3 "/" $4 "/" $5 }' <<<"$st")
	gid=$(awk '/^Gid:/ { print $2 "/" $3 "/" $4 "/" $5 }' <<<"$st")
	capeff=$(proc_field "$pid" CapEff) capbnd=$(proc_field "$pid" CapBnd)
	nnp=$(proc_field "$pid" NoNewPrivs) seccomp=$(proc_field "$pid" Seccomp)
	[ "$uid" = "$user/$user/$user/$user" ] &&
		[ "$gid" = "$group/$group/$group/$group" ]
	verdict $? "cri: $n runs as uid $uid gid $gid" \
		"(runAsUser $user, runAsGroup $group)"
	[ "$(val image_uid "$run")" = "$user" ] && [ "$(val non_root "$run")" = "uid_$user" ]
	verdict $? "cri: $n runAsNonRoot verified as the kubelet does;" \
		"the image's own user is $(val image_uid "$run")"
	[ "$capeff" = 0000000000000000 ] && [ "$capbnd" = 0000000000000000 ]
	verdict $? "cri: $n has no capabilities (CapEff $capeff, CapBnd $capbnd)"
	[ "$nnp" = 1 ]
	verdict $? "cri: $n NoNewPrivs $nnp (allowPrivilegeEscalation: false)"
	[ "$seccomp" = 2 ]
	verdict $? "cri: $n Seccomp $seccomp (RuntimeDefault filter)"
	# As root with every capability, through the container's own root
	# mount: only a read-only mount can refuse the write.
	err=$(: 2>&1 >"/proc/$pid/root/qt-write-test")
	err=${err##*: }
	rm -f "/proc/$pid/root/qt-write-test" 2>/dev/null
	rootopts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | tail -n 1)
	case $err in *"Read-only file system"*) true ;; *) false ;; esac
	verdict $? "cri: $n: a write to / fails (${err:-no error}," \
		"root mounted $rootopts)"
	# The cgroup limits from resources.limits (cgroup v1 or v2).
	cg=$(awk -F: '$2 == "memory" || $2 == "" { print $3; exit }' "/proc/$pid/cgroup")
	if [ -r "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" ]; then
		mem=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")
		cg=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3; exit }' "/proc/$pid/cgroup")
		quota=$(cat "/sys/fs/cgroup/cpu$cg/cpu.cfs_quota_us" 2>/dev/null)
		period=$(cat "/sys/fs/cgroup/cpu$cg/cpu.cfs_period_us" 2>/dev/null)
	else
		mem=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null)
		read -r quota period <"/sys/fs/cgroup$cg/cpu.max" 2>/dev/null
	fi
	oom=$(cat "/proc/$pid/oom_score_adj")
	[ "$mem" = "$(fact "$p" MEM_LIMIT)" ] && [ "$quota" = "$(fact "$p" CPU_QUOTA)" ] &&
		[ "$period" = "$(fact "$p" CPU_PERIOD)" ] &&
		[ "$oom" = "$(fact "$p" OOM_SCORE_ADJ)" ]
	verdict $? "cri: $n cgroup limits from resources: memory $mem," \
		"CPU quota $quota/$period us, oom_score_adj $oom"
}

# stop_pod INSTANCE NAME GRACE: the kubelet's way to end a pod.
stop_pod() {
	local i=$1 n=$2 g=$3 out=$T/$2.stop run=$T/$2.run
	if ! cri "$i" stop "$(val pod "$run")" "$(val container "$run")" "$g" >"$out" 2>&1; then
		show "$out"; nok "cri: stop $n (StopContainer, StopPodSandbox)"; return 1
	fi
	[ "$(val state "$out")" = CONTAINER_EXITED ] && [ "$(val exit_code "$out")" = 0 ] &&
		[ "$(val stop_ms "$out")" -lt $((g * 1000)) ] &&
		[ "$(val pod_state "$out")" = SANDBOX_NOTREADY ]
	verdict $? "cri: $n StopContainer (grace ${g}s) + StopPodSandbox:" \
		"exit code $(val exit_code "$out") after $(val stop_ms "$out") ms," \
		"sandbox $(val pod_state "$out")"
}

remove_pod() { # instance name
	local out=$T/$2.remove
	cri "$1" remove "$(val pod "$T/$2.run")" >"$out" 2>&1
	[ "$(val removed "$out")" = yes ]
	verdict $? "cri: $2 RemovePodSandbox: the pod is gone (PodSandboxStatus NotFound)"
}

# What is left of us on the host after the clean-up.
leftovers() {
	local c n m p t
	c=$(for t in nat filter mangle; do iptables -t "$t" -S 2>/dev/null; done | grep CNI)
	# None of ours; portmap's global chains only while another network's
	# pod uses them (or if they were there before us).
	! grep -qE -- "$OURS" <<<"$c" && {
		! grep -q -- '-N CNI-HOSTPORT-' <<<"$c" ||
			grep -q -- '-A CNI-HOSTPORT-DNAT ' <<<"$c" ||
			[ "$CHAINS_BEFORE" != " " ]
	}
	verdict $? "cri: clean-up: no CNI iptables chains or jumps of ours left" ||
		printf '%s\n' "$c" | diag
	! ip link show "$BR" >/dev/null 2>&1
	verdict $? "cri: clean-up: bridge $BR removed"
	# Our pods' network namespaces are mounts under $T; none may have gone
	# to ip netns's directory either (another program's may come and go).
	n=$(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -cvxF -f <(echo "$NETNS_BEFORE"))
	m=$(awk -v d="$T/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l)
	[ "$n" = 0 ] && [ "$m" = 0 ]
	verdict $? "cri: clean-up: no network namespaces ($n new in ip netns) or mounts ($m) left"
	p=0
	for c in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$c/cmdline"; } 2>/dev/null | grep -q -- "$T/" && p=$((p + 1))
	done
	[ $p = 0 ] && ! ls -d /sys/fs/cgroup/*"$CG_ROOT" /sys/fs/cgroup"$CG_ROOT" >/dev/null 2>&1
	verdict $? "cri: clean-up: no containerd, shim or container process ($p) or pod cgroup left"
}

# ---------------------------------------------------------------- the flow

# usable_port PORT BASE AVOID: PORT unless something listens on it here (our
# DNAT would take that listener's local traffic) or it is another pod's
# hostPort, else the first such free port from BASE on that is not AVOID.
usable_port() {
	local p=$1
	while [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || [ "$p" = "$3" ] ||
		iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null |
		grep -qE -- "--dports ([0-9]+,)*$p(,| )"; do
		[ "$p" -ge "$2" ] && p=$((p + 1)) || p=$2
	done
	echo "$p"
}

flow() {
	needs || return 0
	prepare || return 0
	local pp cp child_image=$C_IMAGE opts=()
	pp=$(usable_port "$P_HOST_PORT" 20000 0)
	cp=$(usable_port "$C_HOST_PORT" 30000 "$pp")
	if [ "$pp" != "$P_HOST_PORT" ]; then
		child_image=${C_IMAGE/localhost:$P_HOST_PORT\//localhost:$pp/}
		echo "# port $P_HOST_PORT is in use here: the parent's hostPort is $pp"
	fi
	[ "$cp" = "$C_HOST_PORT" ] ||
		echo "# port $C_HOST_PORT is in use here: the child's hostPort is $cp"

	CHAINS_BEFORE=" $(cni_chains | tr ' ' / | tr '\n' ' ')"
	FWD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
	NETNS_BEFORE=$(ip netns list 2>/dev/null | awk '{ print $1 }')
	write_cni_conf
	start_containerd A || return 0

	# 1. Side-loading, as on a node: ctr -n k8s.io images import.
	ctr_ A images import "$T/quinistry.tar" >"$T/import.out" 2>&1
	if ! cri A image-status "$P_IMAGE" >"$T/imported" 2>&1; then
		show "$T/import.out" "$T/imported"
		nok "cri: quinistry export imported into k8s.io is what CRI finds for $P_IMAGE"
		return 0
	fi
	ok "cri: quinistry export imported into A's k8s.io: CRI ImageStatus" \
		"$P_IMAGE -> $(val tags "$T/imported") $(val id "$T/imported")"

	# 2. Generation 1.
	run_pod A k8s/parent.yaml parent --host-port "$P_HOST_PORT=$pp" || return 0
	ready parent k8s/parent.yaml "$P_PROBE_TIMEOUT" || return 0
	host_port parent "$pp"
	# What makes 127.0.0.1 work: portmap's snat (on by default) marks the
	# traffic for masquerading and lets the bridge route loopback sources.
	[ -r "/proc/sys/net/ipv4/conf/$BR/route_localnet" ] &&
		echo "# route_localnet on $BR: $(cat "/proc/sys/net/ipv4/conf/$BR/route_localnet")"
	local plog docker oci config layer
	plog=$(val log "$T/parent.run")
	docker=$(log_digest "$plog" 'docker manifest') oci=$(log_digest "$plog" 'oci manifest')
	config=$(log_digest "$plog" config) layer=$(log_digest "$plog" layer)
	[ -n "$docker" ] && [ "$(val id "$T/imported")" = "$config" ]
	verdict $? "cri: the parent serves the imported image" \
		"(config $config, docker manifest $docker)"

	# 3. A fresh image store pulls generation 1 through the hostPort.
	start_containerd B || return 0
	local before pulled
	before=$(wc -l <"$plog")
	if ! cri B pull "$child_image" >"$T/pull-b" 2>&1; then
		show "$T/pull-b"; nok "cri: CRI PullImage $child_image on B (no registry configuration)"
		return 0
	fi
	pulled=$(val digests "$T/pull-b")
	[ "$pulled" = "${child_image%:*}@$docker" ] || [ "$pulled" = "${child_image%:*}@$oci" ]
	verdict $? "cri: CRI PullImage $child_image on B, no registry" \
		"configuration: $pulled (generation 1's)"
	[ "$(val image_ref "$T/pull-b")" = "$config" ]
	verdict $? "cri: ... image ID $(val image_ref "$T/pull-b") = the parent's config"
	tail -n +$((before + 1)) "$plog" >"$T/parent-pull.log"
	grep -q " GET /v2/quinistry/blobs/$layer 200 " "$T/parent-pull.log" &&
		grep -q " GET /v2/quinistry/blobs/$config 200 " "$T/parent-pull.log"
	verdict $? "cri: the layer came through the hostPort: the parent" \
		"logged GET blobs/$layer 200 (and the config)" ||
		show "$T/parent-pull.log"

	# 4. Generation 2 on B (imagePullPolicy Always: pulled again).
	opts=(--host-port "$C_HOST_PORT=$cp")
	[ "$child_image" = "$C_IMAGE" ] || opts+=(--image "$child_image")
	run_pod B k8s/child.yaml child "${opts[@]}" || return 0
	[ "$(val image_id "$T/child.run")" = "$config" ]
	verdict $? "cri: the child runs generation 1's image (ID $(val image_id "$T/child.run"))"
	ready child k8s/child.yaml "$C_PROBE_TIMEOUT" || return 0
	host_port child "$cp"

	# 5. Generation 3's pull, on the parent's node.
	local third=localhost:$cp/${C_IMAGE#*/} clog
	clog=$(val log "$T/child.run")
	before=$(wc -l <"$clog")
	if cri A pull "$third" >"$T/pull-a" 2>&1; then
		pulled=$(val digests "$T/pull-a")
		[ "$pulled" = "${third%:*}@$docker" ] || [ "$pulled" = "${third%:*}@$oci" ]
		verdict $? "cri: CRI PullImage $third on A: $pulled (the same digest)"
		# A holds the layer's snapshot (the parent runs on it): containerd
		# fetches only what it lacks.
		echo "# the child served A's pull: $(tail -n +$((before + 1)) "$clog" |
			awk '$6 ~ /^(GET|HEAD)$/ { split($7, p, "/"); print $6, p[4], $9, "bytes" }' |
			paste -sd, -)"
	else
		show "$T/pull-a"; nok "cri: CRI PullImage $third on A"
	fi

	security parent P_
	security child C_

	stop_pod B child "$C_GRACE"
	stop_pod A parent "$P_GRACE"
	remove_pod B child
	remove_pod A parent
	local left
	left=$(cni_chains | awk '{ print $2 }' | tr '\n' ' ')
	echo "# after RemovePodSandbox, CNI left these chains: ${left:-none}"

	cri_cleanup
	leftovers
}

flow
exit 0
