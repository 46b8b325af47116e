#!/usr/bin/env bash
# Resource limits and process behaviour: the connection cap (-c) drops the
# longest-idle connection to serve a new one; a flood past the descriptor
# limit neither spins the CPU nor stops the server, which recovers once
# descriptors free up; SIGINT exits 0; no needless segment on the wire
# (tcpdump); nothing is ever written to the filesystem (strace). One "ok - "/"not ok - " line per check.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
get() { curl -s -m 3 -o /dev/null -w '%{http_code}' "http://$ADDR$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# --- -c: when full, the connection idle the longest makes room. Each
# makes one request and leaves its answer unread: a keep-alive connection
# (one that has not spoken yet is not even accepted: DEFER_ACCEPT_S)
start "$T/a.log" "$Q" -q -l 127.0.0.1:0 -c 3 || nok "server with -c 3 starts"
H=${ADDR%:*} P=${ADDR##*:}
for fd in 5 6 7; do
	eval "exec $fd<>/dev/tcp/$H/$P"
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&$fd
	sleep 0.1
done
check "-c 3 full of idle connections: a new client is still served" test "$(get /v2/)" = 200
# the oldest (fd 5) was dropped: reading it gives EOF at once
if timeout 2 cat <&5 >/dev/null; then ok "-c 3: the longest-idle connection was the one closed"
else nok "-c 3: the longest-idle connection was the one closed"; fi
printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&7
check "-c 3: a newer idle connection still works" grep -q '^HTTP/1.1 200' <(timeout 2 cat <&7)
exec 5<&- 6<&- 7<&-
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- keep-alive connections that were quiet a while are heard at once,
# on a quiet server and under load (tests/latency.sh measures it closely)
quiet_request() { # one request on a connection quiet for a while; prints ms
	local t0
	t0=$(now_ms)
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&8
	IFS= read -r -t 3 line <&8 && ms_since "$t0"
}
start "$T/quiet.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
H=${ADDR%:*} P=${ADDR##*:}
exec 8<>"/dev/tcp/$H/$P"
sleep 1.5
ms=$(quiet_request)
check "a connection quiet for 1.5 s is answered at once on a quiet server (${ms:-no answer} ms)" test -n "$ms" -a "${ms:-9999}" -lt 100
timeout 2 cat <&8 >/dev/null & sleep 0.1; kill $! 2>/dev/null
exec 8<&-
exec 8<>"/dev/tcp/$H/$P"
sleep 1.5
if cc -O2 -o "$T/loadgen" bench/loadgen.c 2>/dev/null; then
	"$T/loadgen" run -p "$P" -u /v2/ -c 32 -d 3 >"$T/load.out" 2>&1 &
	LG=$!
	sleep 1
	ms=$(quiet_request)
	wait "$LG"
	check "under load (32 busy connections) a connection quiet for 1.5 s is answered within 500 ms (${ms:-no answer} ms)" \
		test -n "$ms" -a "${ms:-9999}" -lt 500
	check "the load itself was served ($(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' "$T/load.out") req/s)" grep -q 'errors=0 non2xx=0' "$T/load.out"
else
	nok "bench/loadgen.c builds"
fi
exec 8<&-
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- what poll() is given under load (traced): every connection on every
# pass, so no connection waits for a later pass to be heard (600 idle, 16
# busy, the listener and the signal pipe: 618 descriptors)
if command -v strace >/dev/null && [ -x "$T/loadgen" ]; then
	start "$T/scan.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
	P=${ADDR##*:}
	mkfifo "$T/idle.in"
	"$T/loadgen" idle -p "$P" -n 600 -t 60 <"$T/idle.in" >"$T/idle.out" 2>&1 &
	IDLEPID=$!
	exec 9>"$T/idle.in"
	for _ in $(seq 100); do grep -q '^ready' "$T/idle.out" && break; sleep 0.05; done
	check "600 idle keep-alive connections set up ($(cat "$T/idle.out"))" grep -q '^ready 600$' "$T/idle.out"
	"$T/loadgen" run -p "$P" -u /v2/ -c 16 -d 3 >"$T/load2.out" 2>&1 &
	LG=$!
	sleep 0.3
	timeout -s INT 1 strace -qq -e trace=poll -p "$SPID" -o "$T/poll.log"
	wait "$LG"
	exec 9>&-
	wait "$IDLEPID"
	# nfds is poll()'s second argument: "poll([...], NFDS, TIMEOUT) = ..."
	grep -oE '\], [0-9]+, -?[0-9]+\) += [0-9]+' "$T/poll.log" | awk -F'[], )=]+' '
		{ if ($2 >= 618) full++; else part++ }
		END { printf "%d %d\n", full + 0, part + 0 }' >"$T/poll.sum"
	read -r full part <"$T/poll.sum"
	check "under load, traced for 1 s: $full poll() passes over all 618 descriptors, $part over fewer" \
		test "$full" -ge 50 -a "$part" = 0
	check "the 600 idle connections were all kept ($(sed -n 's/^still_open //p' "$T/idle.out"))" grep -q '^still_open 600$' "$T/idle.out"
	kill "$SPID"; wait "$SPID" 2>/dev/null
else
	missing "poll() under load" "strace or loadgen missing"
fi

# --- -t: keep-alive connections idle that long are closed (the default,
# 60 s, is the same code with a longer clock)
start "$T/idle.log" "$Q" -q -l 127.0.0.1:0 -t 2 || nok "server with -t 2 starts"
H=${ADDR%:*} P=${ADDR##*:}
exec 8<>"/dev/tcp/$H/$P"
printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&8
t0=$(now_ms)
IFS= read -r -t 3 line <&8
timeout 6 cat <&8 >/dev/null   # returns when the server closes
ms=$(ms_since "$t0")
check "-t 2: an idle keep-alive connection is closed after ${ms} ms (1500-4000)" test "$ms" -ge 1500 -a "$ms" -le 4000
exec 8<&-
exec 8<>"/dev/tcp/$H/$P"
t0=$(now_ms)
timeout 6 cat <&8 >/dev/null
ms=$(ms_since "$t0")
# the kernel holds it back for DEFER_ACCEPT_S (1 s), then the 2 s run
check "-t 2: a connection that never sends is closed after ${ms} ms (deferred accept 1 s + 2 s: 2500-4500)" test "$ms" -ge 2500 -a "$ms" -le 4500
exec 8<&-
"$Q" -t 0 2>/dev/null; rc=$?
check "-t 0 is refused with exit 2" test $rc = 2
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- a flood past the descriptor limit: no spinning, recovery afterwards
# The hard limit is lowered so that the server cannot raise it; -c asks for
# more than fits and is clamped. The server also inherits 30 open
# descriptors it does not know about, so accept() really runs out (EMFILE)
# before the connection table is full: the path that pauses the listener.
(ulimit -Sn 64 -Hn 64; for fd in $(seq 20 49); do eval "exec $fd</dev/null"; done
 exec "$Q" -q -l 127.0.0.1:0 -c 1000) 2>"$T/b.log" &
SPID=$!; PIDS+=($SPID)
wait_listening "$T/b.log" "$SPID"
check "a -c larger than the descriptor limit is clamped, with a message" grep -q 'descriptor limit 64 allows' "$T/b.log"
H=${ADDR%:*} P=${ADDR##*:}
# 200 clients that connect and send half a request head, then wait
for i in $(seq 200); do
	(exec 3<>"/dev/tcp/$H/$P" && printf 'GET /v2/ HTTP/1.1\r\n' >&3 && sleep 4) 2>/dev/null &
done
sleep 1
t0=$(cpu_ticks "$SPID")
sleep 2
t1=$(cpu_ticks "$SPID")
check "200 held connections against 48 slots: server CPU over 2 s is $((t1 - t0)) ticks (< 20)" test $((t1 - t0)) -lt 20
check "the server is alive during the flood" kill -0 "$SPID"
wait $(jobs -p | grep -v "^$SPID$") 2>/dev/null
sleep 0.5
check "after the flood the server serves again" test "$(get /v2/quinistry/tags/list)" = 200
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- on the wire (tcpdump): no segment that the response could carry.
# The request is not acknowledged on its own (TCP_QUICKACK 0 on the
# listener: the ACK rides on the response), and the last response of a
# connection we close carries our FIN (MSG_MORE, then close()).
if command -v tcpdump >/dev/null && [ "$(id -u)" = 0 ]; then
	start "$T/w.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
	P=${ADDR##*:}
	tcpdump -i lo -nn -U --immediate-mode -w "$T/w.pcap" "tcp port $P" 2>"$T/td.err" &
	TD=$!
	for _ in $(seq 100); do grep -q 'listening on' "$T/td.err" && break; sleep 0.05; done
	# one connection that asks to close, then one kept alive (curl closes it)
	curl -s -o /dev/null -H 'Connection: close' "http://$ADDR/v2/quinistry/manifests/latest"
	curl -s -o /dev/null "http://$ADDR/v2/quinistry/manifests/latest"
	sleep 0.3
	kill -INT "$TD"; wait "$TD" 2>/dev/null
	# per connection, what we sent: "segments pure-ACKs-before-data flags-of-first-data"
	tcpdump -nn -r "$T/w.pcap" 2>/dev/null | awk -v p="127.0.0.1.$P" '
		$3 == p { c = $5; sub(/:$/, "", c); if (!(c in n)) order[k++] = c
			n[c]++; f = $7; l = $NF
			if (!(c in data)) { if (l > 0) data[c] = f; else if (f == "[.],") acks[c]++ } }
		END { for (i = 0; i < k; i++) { c = order[i]; print n[c], acks[c] + 0, data[c] } }' >"$T/w.sum"
	{ read -r n1 a1 f1; read -r n2 a2 f2; } <"$T/w.sum"
	check "Connection: close: we send 3 segments (SYN-ACK, response with FIN, last ACK), saw: $(head -1 "$T/w.sum" | tr '\n' ' ')" \
		test "${n1:-0}" = 3 -a "${a1:-1}" = 0
	check "Connection: close: the response segment carries our FIN (flags ${f1:-none})" \
		test "${f1#*F}" != "${f1:-}"
	check "keep-alive: the request is acknowledged only by the response (saw: $(sed -n 2p "$T/w.sum"))" \
		test "${a2:-1}" = 0 -a -n "${f2:-}"
	kill "$SPID"; wait "$SPID" 2>/dev/null
else
	missing "segments on the wire" "tcpdump not installed or not root"
fi

# --- SIGINT (Ctrl-C) ends it cleanly too
start "$T/c.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
kill -INT "$SPID"; t0=$(now_ms); wait "$SPID"; rc=$?
ms=$(ms_since "$t0")
check "SIGINT: exit status 0 within 1 s (${ms} ms)" test "$rc" = 0 -a "$ms" -lt 1000

# --- the server never writes to the filesystem
if command -v strace >/dev/null; then
	start "$T/d.log" strace -f -qq -o "$T/strace.log" \
		-e trace=open,openat,creat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,truncate,ftruncate \
		"$Q" -l 127.0.0.1:0 || nok "server under strace starts"
	L=$(sed -n 's/^  layer *\(sha256:[0-9a-f]*\).*/\1/p' "$T/d.log")
	for u in /v2/ /v2/quinistry/manifests/latest "/v2/quinistry/blobs/$L" /nope; do get "$u" >/dev/null; done
	curl -s -X PUT -d data "http://$ADDR/v2/quinistry/blobs/uploads/" -o /dev/null
	# stop the traced server itself; strace then exits with it
	kill $(pgrep -P "$SPID") 2>/dev/null
	timeout 5 tail --pid="$SPID" -f /dev/null
	check "strace saw the server open its own executable" grep -q '/proc/self/exe' "$T/strace.log"
	if grep -E 'O_WRONLY|O_RDWR|O_CREAT|creat\(|mkdir|unlink|rename|truncate' "$T/strace.log" >&2; then
		nok "the server never writes to the filesystem"
	else
		ok "the server never writes to the filesystem (strace: read-only opens only)"
	fi
else
	missing "filesystem writes" "strace not installed"
fi
exit 0
