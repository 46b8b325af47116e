#!/usr/bin/env bash
# Hostile-client suite: builds tests/hostile.c and tests/slow.c, runs them
# against one server, cross-checks with slowhttptest when installed, then
# checks that the server still serves, exits 0 on SIGTERM within 1 s, exits 1
# when its port is taken and 2 on a bad option.
# Env: QUINISTRY (default ./quinistry, relative to the repo root), CC (cc),
# CI=true turns a missing slowhttptest into `not ok`.
set -u
cd "$(dirname "$0")/.." || exit 1
QUINISTRY=${QUINISTRY:-./quinistry}
CC=${CC:-cc}
tmp=$(mktemp -d /tmp/quinistry-hostile.XXXXXX)
fails=0
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }
skip() { echo "skip - $*"; }

# a limit from quinistry.c's Limits block, else the spec's value
limit() {
	local v=""
	[ -f quinistry.c ] && v=$(sed -n "s/^#define $1 \([0-9][0-9]*\).*/\1/p" quinistry.c | head -n1)
	echo "${v:-$2}"
}
HEAD_MAX=$(limit MAX_HEAD 8192)
TARGET_MAX=$(limit MAX_TARGET 2048)
HEADERS_MAX=$(limit MAX_HEADERS 64)
HT_S=$(($(limit HEAD_TIMEOUT_MS 10000) / 1000))
WT_S=$(($(limit WRITE_TIMEOUT_MS 10000) / 1000))

if [ ! -x "$QUINISTRY" ]; then
	nok "hostile: server binary $QUINISTRY missing (run make)"
	exit 1
fi

# ---- build the two C programs, without warnings
built=()
for p in hostile slow; do
	if "$CC" -std=gnu99 -O2 -Wall -Wextra -o "$tmp/$p" "tests/$p.c" 2>"$tmp/$p.cc.log" &&
		[ ! -s "$tmp/$p.cc.log" ]; then
		ok "tests/$p.c builds with -std=gnu99 -Wall -Wextra and no warnings"
	else
		nok "tests/$p.c builds with -std=gnu99 -Wall -Wextra and no warnings"
		sed 's/^/# /' "$tmp/$p.cc.log" | head -n 20
	fi
	[ -x "$tmp/$p" ] && built+=("$p")
done
have() { local p; for p in "${built[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

# start_server NAME ARGS...: sets srv_pid and srv_port (empty on failure)
start_server() {
	local name=$1 i
	shift
	"$QUINISTRY" "$@" 2>"$tmp/$name.err" &
	srv_pid=$!
	pids+=("$srv_pid")
	srv_port=""
	for i in $(seq 1 100); do
		srv_port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.err" | head -n1)
		[ -n "$srv_port" ] && return 0
		kill -0 "$srv_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# serving PORT: GET the manifest over bash's /dev/tcp, 200 within 2 s
serving() {
	local port=$1 line
	line=$(timeout 2 bash -c '
		exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
		printf "GET /v2/quinistry/manifests/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" >&3
		head -n1 <&3' 2>/dev/null)
	case $line in "HTTP/1.1 200"*) return 0 ;; esac
	return 1
}

# run_suite NAME CMD...: passes the program's lines through; a non-zero
# exit without a `not ok` line becomes one
run_suite() {
	local name=$1 rc n
	shift
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err.out"
	rc=$?
	cat "$tmp/$name.out"
	n=$(grep -c '^not ok' "$tmp/$name.out")
	fails=$((fails + n))
	if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
		nok "$name exited $rc"
		sed 's/^/# /' "$tmp/$name.err.out" | tail -n 5
	fi
}

if ! start_server server -q -l 127.0.0.1:0 -c 12000; then
	nok "server starts with -q -l 127.0.0.1:0 -c 12000"
	sed 's/^/# /' "$tmp/server.err" | tail -n 5
	exit 1
fi
port=$srv_port
pid=$srv_pid
ok "server starts on 127.0.0.1:$port"
echo "# limits: head $HEAD_MAX, target $TARGET_MAX, headers $HEADERS_MAX, head timeout ${HT_S}s, write timeout ${WT_S}s"

if have hostile; then
	run_suite hostile env QH_HEAD_MAX="$HEAD_MAX" QH_TARGET_MAX="$TARGET_MAX" \
		QH_HEADERS_MAX="$HEADERS_MAX" timeout 600 "$tmp/hostile" "$port"
fi
if kill -0 "$pid" 2>/dev/null && serving "$port"; then
	ok "server alive and serving after the hostile rows"
else
	nok "server alive and serving after the hostile rows"
fi

if have slow; then
	run_suite slow timeout 120 "$tmp/slow" "$port" "$HT_S" "$WT_S"
fi

# ---- slowhttptest cross-check (Debian package slowhttptest)
if command -v slowhttptest >/dev/null 2>&1; then
	layer=$(sed -n 's/^ *layer *\(sha256:[0-9a-f]*\).*/\1/p' "$tmp/server.err" | head -n1)
	# slow headers: the server must drop every connection (head timeout),
	# and its probe must find the service available throughout
	timeout 60 slowhttptest -H -c 500 -r 250 -i 3 -x 10 -p 3 -l $((HT_S + 10)) \
		-u "http://127.0.0.1:$port/v2/" -g -o "$tmp/sht-h" >"$tmp/sht-h.out" 2>&1
	unavail=$(awk -F, 'NR > 1 && $5 == 0' "$tmp/sht-h.csv" 2>/dev/null | wc -l)
	rows=$(awk 'NR > 1' "$tmp/sht-h.csv" 2>/dev/null | wc -l)
	if [ "$rows" -gt 0 ] && [ "$unavail" -eq 0 ] && grep -q 'No open connections left' "$tmp/sht-h.out"; then
		ok "slowhttptest -H (500 slowloris connections): service available in all $rows samples, server closed them all"
	else
		nok "slowhttptest -H: $unavail of $rows samples unavailable; $(grep -a 'Exit status' "$tmp/sht-h.out" | sed 's/\x1b\[[0-9;]*m//g')"
	fi
	# slow read of the layer blob: service must stay available
	if [ -n "$layer" ]; then
		timeout 60 slowhttptest -X -c 500 -r 250 -w 512 -y 1024 -n 2 -z 32 -k 3 -p 3 -l 12 \
			-u "http://127.0.0.1:$port/v2/quinistry/blobs/$layer" -g -o "$tmp/sht-x" >"$tmp/sht-x.out" 2>&1
		unavail=$(awk -F, 'NR > 1 && $5 == 0' "$tmp/sht-x.csv" 2>/dev/null | wc -l)
		rows=$(awk 'NR > 1' "$tmp/sht-x.csv" 2>/dev/null | wc -l)
		if [ "$rows" -gt 0 ] && [ "$unavail" -eq 0 ]; then
			ok "slowhttptest -X (500 slow readers of the layer): service available in all $rows samples"
		else
			nok "slowhttptest -X: $unavail of $rows samples unavailable"
		fi
	else
		nok "slowhttptest -X: no layer digest in the server's start-up lines"
	fi
elif [ "${CI:-}" = true ]; then
	nok "slowhttptest cross-check (tool missing)"
else
	skip "slowhttptest cross-check (tool missing)"
fi

if kill -0 "$pid" 2>/dev/null && serving "$port"; then
	ok "server alive and serving at the end"
else
	nok "server alive and serving at the end"
fi

# ---- SIGTERM: exit 0 within 1 s
kill -TERM "$pid" 2>/dev/null
t0=$(date +%s%N)
for i in $(seq 1 40); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
if kill -0 "$pid" 2>/dev/null; then
	nok "SIGTERM: still running after ${ms} ms"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
else
	wait "$pid"
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$ms" -le 1000 ]; then
		ok "SIGTERM: exit 0 after ${ms} ms"
	else
		nok "SIGTERM: exit $rc after ${ms} ms (want 0 within 1000 ms)"
	fi
fi

# ---- port already taken: exit 1 with a message naming the problem
if start_server first -q -l 127.0.0.1:0; then
	p1=$srv_port
	p1pid=$srv_pid
	timeout 5 "$QUINISTRY" -q -l "127.0.0.1:$p1" >/dev/null 2>"$tmp/taken.err"
	rc=$?
	msg=$(grep -v "^ \|serving quinistry" "$tmp/taken.err" | tail -n 2 | tr "\n" " " | head -c 300)
	if [ "$rc" -eq 1 ] && grep -qiE "in use|$p1" "$tmp/taken.err"; then
		ok "port taken: exit 1 with \"$msg\""
	else
		nok "port taken: exit $rc, stderr \"$msg\" (want exit 1 and a message saying the address is in use)"
	fi
	kill -TERM "$p1pid" 2>/dev/null
	wait "$p1pid" 2>/dev/null
else
	nok "port taken: could not start the first server"
fi

# ---- bad option: exit 2 with a message
timeout 5 "$QUINISTRY" --no-such-option >"$tmp/badopt.out" 2>"$tmp/badopt.err"
rc=$?
msg=$(head -c 200 "$tmp/badopt.err" | tr '\n' ' ')
if [ "$rc" -eq 2 ] && [ -s "$tmp/badopt.err" ]; then
	ok "bad option: exit 2 with \"$msg\""
else
	nok "bad option: exit $rc, stderr \"$msg\" (want exit 2 and a message)"
fi

[ "$fails" -eq 0 ]
