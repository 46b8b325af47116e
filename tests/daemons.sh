#!/bin/bash
# Start/stop a private containerd and dockerd for the client test suites,
# by hand (no systemd), with all state under one directory in /tmp.
#
#   tests/daemons.sh start    start both (or reuse them if they already answer);
#                             writes the env file; exit 0 if both answer
#   tests/daemons.sh stop     stop both by PID, remove tasks, mounts and state
#   tests/daemons.sh status   exit 0 if both answer
#   . tests/daemons.sh start  same as start, and also exports the variables
#   . tests/daemons.sh ''     only defines the functions (tests/clientlib.sh
#                             and tests/k8s.sh use them)
#
# Env file ($QT_DAEMONS_ENV, default $QT_DAEMONS_DIR/env) holds shell
# assignments that the suites source:
#   DOCKER_HOST=unix://DIR/docker.sock  CONTAINERD_ADDRESS=DIR/containerd.sock
# Settings: QT_DAEMONS_DIR (default /tmp/qt-daemons), QT_DAEMONS_QUIET=1.
# Needs root and the dockerd, containerd, ctr, runc binaries; otherwise
# start fails (exit 1) with a message on stderr and the suites skip.

qt_d_dir() { printf '%s\n' "${QT_DAEMONS_DIR:-/tmp/qt-daemons}"; }
qt_d_envfile() { printf '%s\n' "${QT_DAEMONS_ENV:-$(qt_d_dir)/env}"; }
qt_d_log() { [ "${QT_DAEMONS_QUIET:-}" = 1 ] || echo "daemons: $*" >&2; }

# The PID in the file is alive and is the daemon we started (not a recycled
# PID now used by something else): its name is the pidfile's base name.
qt_d_pid_alive() { # pidfile (DIR/containerd.pid or DIR/docker.pid)
	local p want
	[ -s "$1" ] || return 1
	p=$(cat "$1" 2>/dev/null) || return 1
	case $p in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$p" 2>/dev/null || return 1
	want=$(basename "$1" .pid)
	[ "$want" = docker ] && want=dockerd
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$want" ]
}

# shellcheck disable=SC2120 # tests/k8s.sh passes a socket
qt_d_containerd_ok() { # [socket, default DIR/containerd.sock]
	local s=${1:-$(qt_d_dir)/containerd.sock}
	[ -S "$s" ] &&
		timeout 5 ctr -a "$s" version >/dev/null 2>&1
}

qt_d_dockerd_ok() {
	local d; d=$(qt_d_dir)
	[ -S "$d/docker.sock" ] || return 1
	if command -v curl >/dev/null 2>&1; then
		[ "$(timeout 5 curl -s --unix-socket "$d/docker.sock" http://localhost/_ping 2>/dev/null)" = OK ]
	else
		DOCKER_HOST="unix://$d/docker.sock" timeout 5 docker version >/dev/null 2>&1
	fi
}

qt_d_wait() { # seconds check-function pidfile
	local i=0 n=$(($1 * 5))
	while [ $i -lt $n ]; do
		"$2" && return 0
		kill -0 "$(cat "$3" 2>/dev/null)" 2>/dev/null || return 1
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# A daemon just started: its pidfile appears (within a sixth of SECONDS),
# then CHECK passes within SECONDS; else its log goes to stderr.
qt_d_up() { # name seconds check pidfile log socket
	local i=0
	while [ ! -s "$4" ] && [ $i -lt $(($2 * 10 / 6)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! qt_d_wait "$2" "$3" "$4"; then
		echo "daemons: $1 did not come up; log $5:" >&2
		tail -n 20 "$5" >&2
		return 1
	fi
	qt_d_log "$1 up (pid $(cat "$4"), $6)"
}

qt_d_write_env() {
	local d f; d=$(qt_d_dir); f=$(qt_d_envfile)
	mkdir -p "$(dirname "$f")"
	cat >"$f.tmp" <<EOF
DOCKER_HOST=unix://$d/docker.sock
CONTAINERD_ADDRESS=$d/containerd.sock
QT_DAEMONS_DIR=$d
export DOCKER_HOST CONTAINERD_ADDRESS QT_DAEMONS_DIR
EOF
	mv -f "$f.tmp" "$f"
}

qt_d_kill_pidfile() { # pidfile seconds
	local p i=0
	qt_d_pid_alive "$1" || { rm -f "$1"; return 0; }
	p=$(cat "$1")
	kill -TERM "$p" 2>/dev/null
	while kill -0 "$p" 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do
		sleep 0.1; i=$((i + 1))
	done
	if kill -0 "$p" 2>/dev/null; then
		kill -KILL "$p" 2>/dev/null
		sleep 0.2
	fi
	rm -f "$1"
}

# Remove every containerd task (this also ends its shim) in every namespace.
qt_d_clear_tasks() {
	local d ns t; d=$(qt_d_dir)
	qt_d_containerd_ok || return 0
	for ns in $(timeout 10 ctr -a "$d/containerd.sock" namespaces ls -q 2>/dev/null); do
		for t in $(timeout 10 ctr -a "$d/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null); do
			timeout 10 ctr -a "$d/containerd.sock" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1
			timeout 10 ctr -a "$d/containerd.sock" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
		done
	done
}

qt_umount_under() { # dir: unmount everything below it, deepest first
	local m
	[ -r /proc/self/mountinfo ] || return 0
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
}

qt_d_umount_all() { qt_umount_under "$(qt_d_dir)"; } # below the state dir

qt_daemons_stop() {
	local d; d=$(qt_d_dir)
	[ -d "$d" ] || return 0
	if qt_d_pid_alive "$d/docker.pid"; then
		qt_d_log "stopping dockerd (pid $(cat "$d/docker.pid"))"
		qt_d_kill_pidfile "$d/docker.pid" 20
	fi
	if qt_d_pid_alive "$d/containerd.pid"; then
		qt_d_clear_tasks
		qt_d_log "stopping containerd (pid $(cat "$d/containerd.pid"))"
		qt_d_kill_pidfile "$d/containerd.pid" 10
	fi
	qt_d_umount_all
	rm -rf "$d" 2>/dev/null || { sleep 1; qt_d_umount_all; rm -rf "$d" 2>/dev/null; }
	rm -f "$(qt_d_envfile)"
	return 0
}

qt_d_start_containerd() {
	local d; d=$(qt_d_dir)
	mkdir -p "$d/containerd-root" "$d/containerd-state"
	cat >"$d/containerd.toml" <<EOF
version = 2
root = "$d/containerd-root"
state = "$d/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$d/containerd.sock"

[ttrpc]
  address = "$d/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.metadata.v1.bolt"]
    content_sharing_policy = "isolated"
EOF
	rm -f "$d/containerd.sock" "$d/containerd.sock.ttrpc"
	# The inner shell writes its own PID (kept by exec) whether or not
	# setsid had to fork.
	setsid sh -c 'echo $$ >"$1"; exec containerd --config "$2"' sh \
		"$d/containerd.pid" "$d/containerd.toml" \
		</dev/null >"$d/containerd.log" 2>&1 &
	qt_d_up containerd 30 qt_d_containerd_ok "$d/containerd.pid" \
		"$d/containerd.log" "$d/containerd.sock"
}

qt_d_start_dockerd() {
	local d; d=$(qt_d_dir)
	mkdir -p "$d/docker-data" "$d/docker-exec"
	echo '{}' >"$d/daemon.json"
	rm -f "$d/docker.sock" "$d/docker.pid"
	setsid dockerd \
		--config-file "$d/daemon.json" \
		--data-root "$d/docker-data" \
		--exec-root "$d/docker-exec" \
		--pidfile "$d/docker.pid" \
		-H "unix://$d/docker.sock" \
		--containerd "$d/containerd.sock" \
		--iptables=false --ip-masq=false --bridge=none \
		</dev/null >"$d/dockerd.log" 2>&1 &
	qt_d_up dockerd 60 qt_d_dockerd_ok "$d/docker.pid" "$d/dockerd.log" \
		"$d/docker.sock"
}

qt_daemons_start() {
	local d b; d=$(qt_d_dir)
	if [ "$(id -u)" != 0 ]; then
		echo "daemons: not root, not starting dockerd/containerd" >&2
		return 1
	fi
	for b in containerd ctr dockerd runc; do
		command -v "$b" >/dev/null 2>&1 || {
			echo "daemons: $b not installed" >&2
			return 1
		}
	done
	if qt_d_pid_alive "$d/containerd.pid" && qt_d_containerd_ok &&
		qt_d_pid_alive "$d/docker.pid" && qt_d_dockerd_ok; then
		qt_d_log "reusing running daemons in $d"
	else
		# Something is missing or broken: restart both from a clean state.
		qt_daemons_stop
		mkdir -p "$d" || return 1
		qt_d_start_containerd || { qt_daemons_stop; return 1; }
		qt_d_start_dockerd || { qt_daemons_stop; return 1; }
	fi
	qt_d_write_env
	return 0
}

qt_daemons_status() { qt_d_containerd_ok && qt_d_dockerd_ok; }

qt_daemons_main() {
	case "${1:-}" in
	start)
		qt_daemons_start || return 1
		if [ "${QT_D_SOURCED:-0}" = 1 ]; then
			. "$(qt_d_envfile)"
			QT_DAEMONS_ENV=$(qt_d_envfile)
			export QT_DAEMONS_ENV
		fi
		;;
	stop) qt_daemons_stop ;;
	status) qt_daemons_status ;;
	env) cat "$(qt_d_envfile)" ;;
	'') [ "${QT_D_SOURCED:-0}" = 1 ] || { echo "usage: $0 start|stop|status|env" >&2; return 2; } ;;
	*) echo "usage: $0 start|stop|status|env" >&2; return 2 ;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	QT_D_SOURCED=0
	qt_daemons_main "$@"
	exit $?
else
	QT_D_SOURCED=1
	qt_daemons_main "$@"
fi
