#!/usr/bin/env bash
# Hostile-client suite: builds tests/hostile.c and tests/slow.c, runs them
# against one server, cross-checks with slowhttptest when installed, then
# checks that the server still serves, exits 0 on SIGTERM within 1 s, exits 1
# when its port is taken and 2 on a bad option. Meanwhile a second server
# gets a request head that stops half-way: it must answer 408 when the head
# timeout runs out, and close.
# Env: QUINISTRY (default ./quinistry, relative to the repo root), CC (cc),
# CI=true turns a missing slowhttptest into `not ok`.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
CC=${CC:-cc}

HEAD_MAX=$(limit MAX_HEAD 8192)
TARGET_MAX=$(limit MAX_TARGET 2048)
HEADERS_MAX=$(limit MAX_HEADERS 64)
HT_MS=$(limit HEAD_TIMEOUT_MS 10000)
HT_S=$((HT_MS / 1000))
WT_S=$(($(limit WRITE_TIMEOUT_MS 10000) / 1000))

if [ ! -x "$Q" ]; then
	nok "hostile: server binary $Q missing (run make)"
	exit 1
fi

# ---- the head timeout, on a server of its own: a client that sends part
# of a request head and then nothing. It runs in the background while the
# rest of the suite works; check_408 reads what it saw.
probe_408() { # probe_408 PORT
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return
	local t0
	t0=$(now_ms)
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n' >&3
	timeout $((HT_S + 10)) cat <&3 >"$T/408.out"
	echo $? >"$T/408.rc" # 0: the server closed; 124: it never did
	ms_since "$t0" >"$T/408.ms"
	# the head, without its CRs, and the body after the blank line
	local at
	at=$(grep -abm1 $'^\r$' "$T/408.out" | cut -d: -f1)
	[ -n "$at" ] || return
	head -c "$at" "$T/408.out" | tr -d '\r' >"$T/408.head"
	tail -c +$((at + 3)) "$T/408.out" >"$T/408.body"
}
framed_408() { # Connection: close, a Content-Length that is the body's, EOF
	local len
	len=$(sed -n 's/^content-length: *//Ip' "$T/408.head")
	grep -qix 'connection: close' "$T/408.head" && [ -n "$len" ] &&
		[ "$len" = "$(stat -c %s "$T/408.body")" ] && [ "$(cat "$T/408.rc")" = 0 ]
}
check_408() {
	local ms status
	wait "$PROBE_408"
	[ -s "$T/408.head" ] || : >"$T/408.head"
	ms=$(cat "$T/408.ms" 2>/dev/null)
	status=$(head -n 1 "$T/408.head")
	check "head timeout: a head that stops half-way gets \"${status:-nothing}\" after ${ms:-?} ms (HEAD_TIMEOUT_MS $HT_MS, want 408 Request Timeout within -200/+2000 ms of it)" \
		test "$status" = "HTTP/1.1 408 Request Timeout" -a "${ms:-0}" -ge $((HT_MS - 200)) \
		-a "${ms:-0}" -le $((HT_MS + 2000))
	check "head timeout: the 408 has Connection: close and a Content-Length that is its body's, then the server closes" \
		framed_408 || diag <"$T/408.out"
	# like every response, the 408 carries Date (RFC 9110 6.6.1), an
	# IMF-fixdate in GMT
	check "head timeout: the 408 carries Date (IMF-fixdate)" grep -qE \
		'^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$' \
		"$T/408.head"
}
if start "$T/408.log" "$Q" -q -l 127.0.0.1:0; then
	probe_408 "${ADDR##*:}" &
	PROBE_408=$!
else
	nok "head timeout: a second server starts"
fi

# ---- build the two C programs, without warnings
for p in hostile slow; do
	if "$CC" -std=gnu99 -O2 -Wall -Wextra -o "$T/$p" "tests/$p.c" 2>"$T/$p.cc.log" &&
		[ ! -s "$T/$p.cc.log" ]; then
		ok "tests/$p.c builds with -std=gnu99 -Wall -Wextra and no warnings"
	else
		nok "tests/$p.c builds with -std=gnu99 -Wall -Wextra and no warnings"
		head -n 20 "$T/$p.cc.log" | diag
	fi
done

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
	"$@" >"$T/$name.out" 2>"$T/$name.err.out"
	rc=$?
	cat "$T/$name.out"
	n=$(grep -c '^not ok' "$T/$name.out")
	FAILS=$((FAILS + n))
	if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
		nok "$name exited $rc"
		tail -n 5 "$T/$name.err.out" | diag
	fi
}

if ! start "$T/server.err" "$Q" -q -l 127.0.0.1:0 -c 12000; then
	nok "server starts with -q -l 127.0.0.1:0 -c 12000"
	tail -n 5 "$T/server.err" | diag
	exit 1
fi
port=${ADDR##*:}
pid=$SPID
ok "server starts on 127.0.0.1:$port"
echo "# limits: head $HEAD_MAX, target $TARGET_MAX, headers $HEADERS_MAX, head timeout ${HT_S}s, write timeout ${WT_S}s"

if [ -x "$T/hostile" ]; then
	run_suite hostile env QH_HEAD_MAX="$HEAD_MAX" QH_TARGET_MAX="$TARGET_MAX" \
		QH_HEADERS_MAX="$HEADERS_MAX" timeout 600 "$T/hostile" "$port"
fi
alive() { kill -0 "$pid" 2>/dev/null && serving "$port"; }
check "server alive and serving after the hostile rows" alive

if [ -x "$T/slow" ]; then
	run_suite slow timeout 120 "$T/slow" "$port" "$HT_S" "$WT_S"
fi

# ---- slowhttptest cross-check (Debian package slowhttptest)
if have slowhttptest; then
	layer=$(sed -n 's/^ *layer *\(sha256:[0-9a-f]*\).*/\1/p' "$T/server.err" | head -n1)
	# slow headers: the server must drop every connection (head timeout),
	# and its probe must find the service available throughout
	timeout 60 slowhttptest -H -c 500 -r 250 -i 3 -x 10 -p 3 -l $((HT_S + 10)) \
		-u "http://127.0.0.1:$port/v2/" -g -o "$T/sht-h" >"$T/sht-h.out" 2>&1
	unavail=$(awk -F, 'NR > 1 && $5 == 0' "$T/sht-h.csv" 2>/dev/null | wc -l)
	rows=$(awk 'NR > 1' "$T/sht-h.csv" 2>/dev/null | wc -l)
	if [ "$rows" -gt 0 ] && [ "$unavail" -eq 0 ] && grep -q 'No open connections left' "$T/sht-h.out"; then
		ok "slowhttptest -H (500 slowloris connections): service available in all $rows samples, server closed them all"
	else
		nok "slowhttptest -H: $unavail of $rows samples unavailable; $(grep -a 'Exit status' "$T/sht-h.out" | sed 's/\x1b\[[0-9;]*m//g')"
	fi
	# slow read of the layer blob: service must stay available
	if [ -n "$layer" ]; then
		timeout 60 slowhttptest -X -c 500 -r 250 -w 512 -y 1024 -n 2 -z 32 -k 3 -p 3 -l 12 \
			-u "http://127.0.0.1:$port/v2/quinistry/blobs/$layer" -g -o "$T/sht-x" >"$T/sht-x.out" 2>&1
		unavail=$(awk -F, 'NR > 1 && $5 == 0' "$T/sht-x.csv" 2>/dev/null | wc -l)
		rows=$(awk 'NR > 1' "$T/sht-x.csv" 2>/dev/null | wc -l)
		if [ "$rows" -gt 0 ] && [ "$unavail" -eq 0 ]; then
			ok "slowhttptest -X (500 slow readers of the layer): service available in all $rows samples"
		else
			nok "slowhttptest -X: $unavail of $rows samples unavailable"
		fi
	else
		nok "slowhttptest -X: no layer digest in the server's start-up lines"
	fi
else
	missing "slowhttptest cross-check" "tool missing"
fi

check "server alive and serving at the end" alive

# ---- SIGTERM: exit 0 within 1 s
kill -TERM "$pid" 2>/dev/null
t0=$(now_ms)
for _ in $(seq 1 40); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
ms=$(ms_since "$t0")
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
if start "$T/first.err" "$Q" -q -l 127.0.0.1:0; then
	p1=${ADDR##*:}
	timeout 5 "$Q" -q -l "127.0.0.1:$p1" >/dev/null 2>"$T/taken.err"
	rc=$?
	msg=$(grep -v "^ \|serving quinistry" "$T/taken.err" | tail -n 2 | tr "\n" " " | head -c 300)
	if [ "$rc" -eq 1 ] && grep -qiE "in use|$p1" "$T/taken.err"; then
		ok "port taken: exit 1 with \"$msg\""
	else
		nok "port taken: exit $rc, stderr \"$msg\" (want exit 1 and a message saying the address is in use)"
	fi
	kill -TERM "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
else
	nok "port taken: could not start the first server"
fi

# ---- bad option: exit 2 with a message
timeout 5 "$Q" --no-such-option >"$T/badopt.out" 2>"$T/badopt.err"
rc=$?
msg=$(head -c 200 "$T/badopt.err" | tr '\n' ' ')
if [ "$rc" -eq 2 ] && [ -s "$T/badopt.err" ]; then
	ok "bad option: exit 2 with \"$msg\""
else
	nok "bad option: exit $rc, stderr \"$msg\" (want exit 2 and a message)"
fi

[ -n "${PROBE_408:-}" ] && check_408
[ "$FAILS" -eq 0 ]
