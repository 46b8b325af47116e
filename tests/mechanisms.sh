#!/usr/bin/env bash
# The mechanisms no other suite pins down, each checked so that it fails
# without them (every check was first seen to fail on a copy of
# quinistry.c with that mechanism removed): the descriptor reserve and the
# raise of the soft descriptor limit, the default idle timeout, the end of
# lingering, the end of the SIGTERM grace, the accept burst, the bounded
# send buffer, the size bound on our own executable, one system call per
# response, and no Nagle. One "ok - "/"not ok - " line per check.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

# layer_flood LOG N: a server of its own, and on fd 8 N pipelined GETs of
# the layer that nobody reads
layer_flood() {
	start "$T/$1" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
	L=$(sed -n 's/^  layer *\(sha256:[0-9a-f]*\).*/\1/p' "$T/$1")
	exec 8<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}"
	for _ in $(seq "$2"); do
		printf 'GET /v2/quinistry/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n' "$L"
	done >&8
}

# ---- the default idle timeout (IDLE_TIMEOUT_MS, no -t): a keep-alive
# connection answered once and then silent is closed after it. It takes a
# minute, so it runs in the background, like probe_408 (the same server
# will do), and check_idle reads the result at the end.
IT_MS=$(limit IDLE_TIMEOUT_MS 60000)
probe_idle() { # probe_idle PORT
	exec 4<>"/dev/tcp/127.0.0.1/$1" || return
	local t0 line
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&4
	IFS= read -r -t 3 line <&4 # answered: from now on it is idle
	t0=$(now_ms)
	timeout $((IT_MS / 1000 + 10)) cat <&4 >/dev/null
	ms_since "$t0" >"$T/idle.ms"
}
check_idle() {
	local ms
	wait "$PROBE_IDLE"
	ms=$(cat "$T/idle.ms" 2>/dev/null)
	check "idle timeout: a keep-alive connection silent after its answer is closed after ${ms:-?} ms (IDLE_TIMEOUT_MS $IT_MS; want within -500/+2000 ms of it)" \
		test "${ms:-0}" -ge $((IT_MS - 500)) -a "${ms:-0}" -le $((IT_MS + 2000))
}
# it takes a minute: a server of its own, probed in the background while
# the rest runs; check_idle reads the result at the end
start "$T/id.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
probe_idle "${ADDR##*:}" &
PROBE_IDLE=$!

# --- FD_RESERVE: the connection table stops short of the descriptor limit,
# so when it is full of idle connections the longest-idle one is dropped
# for a new client, instead of accept() failing (EMFILE) and the new client
# waiting in the backlog
(ulimit -Sn 64 -Hn 64; exec "$Q" -q -l 127.0.0.1:0 -c 1000) 2>"$T/fr.log" & SPID=$!; PIDS+=($SPID)
wait_listening "$T/fr.log" "$SPID"
for fd in $(seq 10 69); do
	eval "exec $fd<>/dev/tcp/${ADDR%:*}/${ADDR##*:}"
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&$fd
done
sleep 0.3
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://$ADDR/v2/")
check "64 descriptors, 60 idle keep-alive connections: a new client is served ($code)" test "$code" = 200
for fd in $(seq 10 69); do eval "exec $fd<&-"; done
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- the soft descriptor limit is raised to the hard one, so a -c that
# fits under the hard limit is not clamped by a low soft limit
(ulimit -Sn 256; exec "$Q" -q -l 127.0.0.1:0 -c 1000) 2>"$T/rl.log" & SPID=$!; PIDS+=($SPID)
wait_listening "$T/rl.log" "$SPID"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$SPID/limits")
hard=$(awk '/^Max open files/ { print $5 }' "/proc/$SPID/limits")
check "a soft descriptor limit of 256 is raised to the hard one ($soft of $hard), -c 1000 not clamped" \
	bash -c "test '$soft' = '$hard' && ! grep -q 'descriptor limit' '$T/rl.log'"
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- lingering: after a response that ends the connection with input
# unread, we shut our side and drain; a client that never closes is let go
# after LINGER_TIMEOUT_MS (counted as the server's open descriptors)
LT=$(limit LINGER_TIMEOUT_MS 2000)
start "$T/lg.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
nfd() { ls "/proc/$SPID/fd" | wc -l; }
fd0=$(nfd)
exec 8<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}"
printf 'BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&8 # a 501: we close, lingering
timeout 2 cat <&8 >/dev/null # our FIN arrives; we keep the socket open
fd1=$(nfd)
sleep $((LT / 1000 + 1))
fd2=$(nfd)
check "linger: a client that never closes is released after LINGER_TIMEOUT_MS ($LT ms): descriptors $fd0, $fd1 while lingering, $fd2 after" \
	test "$fd1" = $((fd0 + 1)) -a "$fd2" = "$fd0"
exec 8<&-
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- SIGTERM with a response that cannot finish (the client reads nothing):
# it is cut at the end of the grace, and the process exits 0 then
GRACE=$(limit SHUTDOWN_GRACE_MS 500)
layer_flood g.log 40
sleep 0.3
t0=$(now_ms)
kill -TERM "$SPID"
for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
ms=$(ms_since "$t0")
if kill -0 "$SPID" 2>/dev/null; then
	kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; rc=killed
else
	wait "$SPID"; rc=$?
fi
check "SIGTERM: a response the client does not read is cut at the end of the $GRACE ms grace (exit ${rc} after ${ms} ms)" \
	test "$rc" = 0 -a "$ms" -ge $((GRACE - 50)) -a "$ms" -le $((GRACE + 1000))
exec 8<&-

# --- a flood of waiting connections is accepted ACCEPT_BURST per loop
# pass, so that the connections already open are served in between: 600
# connections queue while the server is stopped, then strace counts the
# accept4() calls between two poll() calls
BURST=$(limit ACCEPT_BURST 128)
start "$T/ab.log" "$Q" -q -l 127.0.0.1:0 -c 2000 || nok "server starts"
kill -STOP "$SPID"
python3 -c '
import socket, sys, time
port = int(sys.argv[1]); socks = []
for _ in range(600):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
open(sys.argv[2], "w").close()
time.sleep(4)' "${ADDR##*:}" "$T/ab.ready" &
PY=$!
for _ in $(seq 100); do [ -e "$T/ab.ready" ] && break; sleep 0.05; done
strace -qq -e trace=poll,accept4 -p "$SPID" -o "$T/ab.strace" &
ST=$!
sleep 0.5
kill -CONT "$SPID"
sleep 1
kill -INT "$ST"; wait "$ST" 2>/dev/null
wait "$PY"
# the longest run of accept4() calls that returned a descriptor
most=$(awk '/^poll\(/ { run = 0 } /^accept4\(.*= [0-9]+$/ { if (++run > max) max = run }
	END { print max + 0 }' "$T/ab.strace")
check "a flood of 600 connections is accepted at most ACCEPT_BURST ($BURST) per pass, in bursts of $most" \
	test "$most" = "$BURST"
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- the send buffer of each connection is bounded (SNDBUF_BYTES, which
# Linux doubles), so a client that asks for much and reads nothing cannot
# pin megabytes of kernel memory: ss shows the socket's buffer (tb)
SB=$(limit SNDBUF_BYTES 131072)
layer_flood sb.log 100
sleep 1
tb=$(ss -tmnH state established "( sport = :${ADDR##*:} )" | grep -o 'tb[0-9]*' | head -1)
tb=${tb#tb}
check "a client that reads nothing: the server's send buffer is ${tb:-?} bytes (at most 2 x SNDBUF_BYTES = $((2 * SB)))" \
	test -n "$tb" -a "${tb:-0}" -le $((2 * SB))
exec 8<&-
kill "$SPID"; wait "$SPID" 2>/dev/null

# --- an executable over MAX_SELF is not us: a copy padded past it (ELF
# ignores bytes after its segments) refuses to start, with exit 1
MS=$(limit MAX_SELF 67108864) # (64 * 1024 * 1024)
cp "$Q" "$T/big" && truncate -s $((MS + 1)) "$T/big"
timeout 5 "$T/big" -q -l 127.0.0.1:0 2>"$T/big.err" >/dev/null; rc=$?
check "an executable of MAX_SELF + 1 bytes: exit 1, \"cannot read my own executable\" (exit $rc)" \
	bash -c "test $rc = 1 && grep -q 'cannot read my own executable' '$T/big.err'"
rm -f "$T/big"

# --- one system call per response: a head with a body by one sendmsg(),
# a head alone (HEAD) by one send() (send_some)
start "$T/sc.log" strace -f -qq -e trace=sendmsg,sendto -o "$T/sc.strace" \
	"$Q" -q -l 127.0.0.1:0 || nok "server under strace starts"
curl -s -o /dev/null "http://$ADDR/v2/quinistry/manifests/latest"
curl -s -o /dev/null -I "http://$ADDR/v2/quinistry/manifests/latest"
sleep 0.2
msg=$(grep -c '^[0-9 ]*sendmsg(' "$T/sc.strace")
to=$(grep -c '^[0-9 ]*sendto(' "$T/sc.strace")
kill $(pgrep -P "$SPID") 2>/dev/null
timeout 5 tail --pid="$SPID" -f /dev/null
check "GET and HEAD of a manifest: one sendmsg() ($msg) and one send() ($to)" \
	test "$msg:$to" = 1:1

# --- no Nagle (TCP_NODELAY on the listener, inherited): pipelined
# requests get their responses back to back; with Nagle each response after
# the first waits for the client's delayed ACK (~40 ms). 30 round trips
# first, so the client's ACKs are delayed as in a long pull.
start "$T/nd.log" "$Q" -q -l 127.0.0.1:0 || nok "server starts"
ms=$(python3 - "${ADDR##*:}" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.settimeout(3)
req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
def answers(n): # read until n whole responses (each ends with the body {})
    got = b""
    while got.count(b"HTTP/1.1 200") < n or not got.endswith(b"{}"):
        got += s.recv(65536)
for _ in range(30):
    s.sendall(req); answers(1)
worst = 0
for _ in range(5):
    t = time.monotonic()
    s.sendall(req * 5); answers(5)
    worst = max(worst, time.monotonic() - t)
    time.sleep(0.05)
print(int(worst * 1000))
PY
)
check "5 pipelined requests on a warm keep-alive connection: all answered within ${ms:-?} ms (want < 20: no Nagle delay)" \
	test -n "$ms" -a "${ms:-999}" -lt 20
kill "$SPID"; wait "$SPID" 2>/dev/null

check_idle
exit 0
