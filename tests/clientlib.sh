# shellcheck shell=bash
# Shared by the registry-client suites (tests/clients.sh, tests/export.sh
# and others); sourced after `cd` to the repository root, not run. On top
# of tests/lib.sh (Q, CI, T and the clean-up, ok/nok/skip/missing/check/
# diag, have, is_static, now_ms, start) it provides:
#  - the settings TZ/LC_ALL and the state the helpers below keep
#    (SERVER_PID, USED_PORTS, *_OK, ...);
#  - skp (lib.sh's skip) and suite_needs;
#  - probes: daemon_reason, sha, free_port, wait_http, served_digest;
#  - the server: start_server, log_digests;
#  - clients: docker_ready, ctr_ready (usable, else `missing`), pm and
#    PM_RUN_OPTS (podman with a private store under $T),
#    container_stop_timed (docker/podman), ctr_run_bg, ctr_stop_timed;
#  - daemons: setup_daemons (tests/daemons.sh's, or private ones);
#  - clean-up: docker_cleanup, podman_cleanup, ctr_cleanup and
#    client_cleanup, which begin_suite adds to lib.sh's clean-up.
# The suite sets TAG (prefix of its container names), CTR_NS (containerd
# namespaces it uses) and PM_STORES (its podman stores, see pm) before
# anything cleans up.

. tests/lib.sh || exit 1
# tests/daemons.sh's functions (qt_umount_under) without running a command.
. tests/daemons.sh '' || exit 1

export TZ=UTC LC_ALL=C

STARTED_DAEMONS=0
SERVER_PID=
USED_PORTS=" "
DOCKER_OK=0 PODMAN_OK=0 CTR_OK=0

skp() { skip "$@"; }
# The binary is there and so is every tool the suite cannot do without;
# else say so and end the suite.
suite_needs() { # prefix tool...
	local p=$1 t; shift
	if [ ! -x "$Q" ]; then
		nok "$p $Q exists and is executable"
		exit 1
	fi
	for t in "$@"; do
		have $t || { missing "$p suite needs $t" "$t missing"; exit 0; }
	done
}
# Why a private daemon is not available.
daemon_reason() { # binary
	if ! have "$1"; then echo "$1 missing"
	elif [ "$(id -u)" != 0 ]; then echo "not root, cannot start $1"
	else echo "$1 did not start; see tests/daemons.sh messages"
	fi
}
sha() { sha256sum "$1" | awk '{print "sha256:" $1}'; }

# A port nobody listens on (and that we have not handed out yet).
free_port() {
	local i p lo=32768 hi=60999 base=20000 span=12000
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	# Stay below the ephemeral range: a busy machine (load tests) may have
	# any ephemeral port bound by an outgoing connection.
	if [ "${lo:-0}" -ge 12000 ] 2>/dev/null; then
		base=10000 span=$((lo - 10000))
	fi
	for i in $(seq 1 200); do
		p=$((base + (RANDOM * 32768 + RANDOM) % span))
		case $USED_PORTS in *" $p "*) continue ;; esac
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		if have ss && [ -n "$(ss -Hatn "( sport = :$p )" 2>/dev/null)" ]; then
			continue
		fi
		USED_PORTS="$USED_PORTS$p "
		echo "$p"
		return 0
	done
	return 1
}

# Wait (bounded) until 127.0.0.1:PORT answers GET /v2/ with 200.
wait_http() { # port seconds
	local i=0 n=$((${2:-15} * 10))
	while [ $i -lt $n ]; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null)" = 200 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Docker-Content-Digest of the tag as served (Docker manifest type asked for).
served_digest() { # port
	curl -s -I --max-time 5 \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:$1/v2/quinistry/manifests/latest" 2>/dev/null |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}

# ---------------------------------------------------------------- server
# $Q OPTION... -l 127.0.0.1:0 in the background (SERVER_PID), its stderr in
# LOG; lib.sh's start, which waits until it listens (ADDR), or dies.
start_server() { # log option...
	local log=$1
	shift
	start "$log" "$Q" "$@" -l 127.0.0.1:0
	local rc=$?
	SERVER_PID=$SPID
	return $rc
}

# The digests the server logs at start-up: sets D, O, CFG and L; fails
# unless it logged all four.
log_digests() { # log
	D=$(sed -n 's/^ *docker manifest *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$1" | head -n 1)
	O=$(sed -n 's/^ *oci manifest *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$1" | head -n 1)
	CFG=$(sed -n 's/^ *config *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$1" | head -n 1)
	L=$(sed -n 's/^ *layer *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$1" | head -n 1)
	[ -n "$D" ] && [ -n "$O" ] && [ -n "$CFG" ] && [ -n "$L" ]
}

# ---------------------------------------------------------------- clients
# docker answers (else `missing` DESCRIPTION, with the reason): from here on
# the clean-up handles docker, and earlier quinistry images are wiped so a
# pull really fetches.
docker_ready() { # description
	if ! have docker; then missing "$1" "docker missing"; return 1; fi
	if [ -z "${DOCKER_HOST:-}" ] || ! timeout 20 docker version >/dev/null 2>&1; then
		missing "$1" "$(daemon_reason dockerd)"; return 1
	fi
	DOCKER_OK=1
	docker_cleanup
}

# containerd answers (else `missing` DESCRIPTION, with the reason): from
# here on the clean-up handles our namespaces (CTR_NS), emptied now.
ctr_ready() { # description
	if ! have ctr; then missing "$1" "ctr missing"; return 1; fi
	if [ -z "${CONTAINERD_ADDRESS:-}" ] || ! timeout 20 ctr version >/dev/null 2>&1; then
		missing "$1" "$(daemon_reason containerd)"; return 1
	fi
	export CONTAINERD_ADDRESS
	CTR_OK=1
	ctr_cleanup
}

pm() { # [store] -> podman command line using the private store $T/podman<store>
	echo "podman --root $T/podman${1:-}/root --runroot $T/podman${1:-}/run --tmpdir $T/podman${1:-}/tmp" \
		"--cgroup-manager cgroupfs --events-backend file --runtime runc"
}
# shellcheck disable=SC2034 # for the suites
PM_RUN_OPTS="--network host --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"

# Stop a container, timed: sets STOP_MS and STOP_CODE (its exit code).
# shellcheck disable=SC2034 # for the suites
container_stop_timed() { # "docker" or "$(pm N)", container name
	local t0 t1
	t0=$(now_ms)
	timeout 30 $1 stop "$2" >/dev/null 2>&1
	t1=$(now_ms)
	STOP_MS=$((t1 - t0))
	STOP_CODE=$($1 inspect -f '{{.State.ExitCode}}' "$2" 2>/dev/null)
}

# ctr run in the foreground (in the background of this shell), so that its
# exit status is the task's and the server's stderr lands in a file.
ctr_run_bg() { # namespace ref name port log
	ctr -n "$1" run --net-host --env PORT="$4" "$2" "$3" </dev/null >"$5" 2>&1 &
	CTR_RUN_PID=$!
	PIDS+=("$CTR_RUN_PID")
}

# SIGTERM to a task of ctr_run_bg, wait (at most 5 s) for its ctr run to
# end: sets STOP_MS and STOP_CODE (its exit status, or still-running).
# shellcheck disable=SC2034 # for the suites
ctr_stop_timed() { # namespace name ctr-run-pid
	local t0 t1 i=0
	t0=$(now_ms)
	timeout 10 ctr -n "$1" tasks kill -s SIGTERM "$2" >/dev/null 2>&1
	while kill -0 "$3" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	t1=$(now_ms)
	STOP_MS=$((t1 - t0))
	if kill -0 "$3" 2>/dev/null; then
		STOP_CODE=still-running
	else
		wait "$3"
		STOP_CODE=$?
	fi
}

# ---------------------------------------------------------------- daemons
setup_daemons() {
	local envf=${QT_DAEMONS_ENV:-/tmp/qt-daemons/env}
	if [ -f "$envf" ]; then
		. "$envf"
		tests/daemons.sh status && return 0
	fi
	if [ "$(id -u)" = 0 ] && have dockerd && have containerd && have runc; then
		if QT_DAEMONS_QUIET=1 QT_DAEMONS_ENV="$T/daemons.env" \
			QT_DAEMONS_DIR="$T/d" tests/daemons.sh start; then
			STARTED_DAEMONS=1
			QT_DAEMONS_DIR="$T/d"
			export QT_DAEMONS_DIR
			. "$T/daemons.env"
			return 0
		fi
	fi
	unset DOCKER_HOST CONTAINERD_ADDRESS
	return 1
}

# ---------------------------------------------------------------- cleanup
docker_cleanup() {
	[ $DOCKER_OK = 1 ] || return 0
	local c
	c=$(docker ps -aq --filter "name=^$TAG-" 2>/dev/null)
	[ -n "$c" ] && docker rm -f $c >/dev/null 2>&1
	[ -n "${CFG:-}" ] && docker rmi -f "$CFG" >/dev/null 2>&1
	return 0
}
podman_cleanup() {
	[ $PODMAN_OK = 1 ] || return 0
	local n
	for n in "${PM_STORES[@]}"; do
		[ -d "$T/podman$n" ] || continue
		timeout 60 $(pm "$n") rm -af -t 0 >/dev/null 2>&1
		timeout 60 $(pm "$n") rmi -af >/dev/null 2>&1
	done
	return 0
}
ctr_cleanup() {
	[ $CTR_OK = 1 ] || return 0
	local ns t c i
	for ns in $CTR_NS; do
		for t in $(timeout 10 ctr -n "$ns" tasks ls -q 2>/dev/null); do
			timeout 10 ctr -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1
			timeout 10 ctr -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
		done
		for c in $(timeout 10 ctr -n "$ns" containers ls -q 2>/dev/null); do
			timeout 10 ctr -n "$ns" containers rm "$c" >/dev/null 2>&1
		done
		i=$(timeout 10 ctr -n "$ns" images ls -q 2>/dev/null)
		[ -n "$i" ] && timeout 30 ctr -n "$ns" images rm --sync $i >/dev/null 2>&1
		timeout 10 ctr namespaces rm "$ns" >/dev/null 2>&1
	done
	return 0
}
# After lib.sh has stopped the servers and ctr runs (PIDS): what the
# clients made, the daemons if we started them, mounts under T.
client_cleanup() {
	docker_cleanup
	podman_cleanup
	ctr_cleanup
	if [ $STARTED_DAEMONS = 1 ]; then
		QT_DAEMONS_QUIET=1 tests/daemons.sh stop
	fi
	qt_umount_under "$T"
}

# From here on the clean-up also handles the clients. NAME is kept for the
# suites that give it; T is lib.sh's (/tmp/qt-SUITE.XXXXXX).
begin_suite() { # name
	at_exit client_cleanup
}
