#!/usr/bin/env bash
# Returning clients. A pull pauses between its steps, so its keep-alive
# connection goes quiet and then asks again; it must be answered as fast
# as a busy connection, also while others keep the server busy. 20 clients
# each send GET /v2/ after 1.6 s of silence, 3 times, while 64 connections
# hammer the server (`loadgen returning`, bench/loadgen.c); the server runs
# on one core and the clients on the other, as in `make bench`. Passes when
# p90 < 20 ms: a server that polls every connection on every pass answers
# in well under 1 ms, one that looks at quiet connections only every 100 ms
# takes about 100 ms, and 20 ms leaves room for a busy 2-core machine.
# Env: QUINISTRY (./quinistry), LAT_P90_MS (20), CC (cc).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

P90_MAX=${LAT_P90_MS:-20}
CLIENTS=20 SILENCE=1.6 BUSY=64 ROUNDS=3

# field NAME: a NAME=value of loadgen's result line
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$T/ret.out"; }
# below A B: A < B, as decimals
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; }

if ! "${CC:-cc}" -std=c99 -O2 -o "$T/loadgen" bench/loadgen.c 2>"$T/cc.log"; then
	nok "bench/loadgen.c builds"
	diag <"$T/cc.log"
	exit 1
fi

# Server and clients on different cores, so the clients' own work does
# not delay the server (and the server is the one that is busy).
srv=() cli=()
if have taskset && [ "$(nproc)" -ge 2 ]; then
	srv=(taskset -c 1) cli=(taskset -c 0)
fi
if ! start "$T/q.log" "${srv[@]}" "$Q" -q -l 127.0.0.1:0; then
	nok "server starts"
	exit 1
fi
P=${ADDR##*:}

timeout 120 "${cli[@]}" "$T/loadgen" returning -p "$P" -n "$CLIENTS" \
	-s "$SILENCE" -c "$BUSY" -r "$ROUNDS" >"$T/ret.out" 2>&1
diag <"$T/ret.out"
samples=$(field samples) errors=$(field errors)
p50=$(field p50_ms) p90=$(field p90_ms) max=$(field max_ms)
what="$samples of $((CLIENTS * ROUNDS)) GET /v2/ after ${SILENCE} s of silence"
what+=", $BUSY busy connections"
fig="p50 ${p50:-?} ms, p90 ${p90:-?} ms, max ${max:-?} ms, ${errors:-?} errors"
if [ "$samples" = $((CLIENTS * ROUNDS)) ] && [ "$errors" = 0 ] &&
	below "$p90" "$P90_MAX"; then
	ok "returning clients: $what: $fig (want p90 < $P90_MAX ms)"
else
	nok "returning clients: $what: $fig (want p90 < $P90_MAX ms, no errors)"
fi
# The figure means something only if the server really was busy.
rps=$(field busy_rps) berr=$(field busy_errors)
if [ "$berr" = 0 ] && ! below "${rps:-0}" 1000; then
	ok "returning clients: the busy load was served meanwhile ($rps req/s, 0 errors)"
else
	nok "returning clients: the busy load was served meanwhile (${rps:-?} req/s, ${berr:-?} errors)"
fi
[ "$FAILS" -eq 0 ]
