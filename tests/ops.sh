#!/usr/bin/env bash
# shellcheck disable=SC2317 # the predicates below are run through check
# What an operator sees, with real processes and sockets: the CLI's errors
# (each says what is accepted, none comes after the banner), export -o and
# --output=, the request log line (format, duration, what was served, a
# hostile User-Agent escaped, -q, one write(2) per loop pass under strace),
# a TLS ClientHello on the plain port, the SIGTERM/SIGINT lines, and the
# listener: dual-stack [::] by default, -l kept as given, IPv4 only where
# the kernel has no IPv6 (tests/noipv6.c, a seccomp filter) and inside a
# network namespace with IPv6 disabled.
# One "ok - " / "not ok - " / "skip - " line per check (see test.sh).
#
# Env: QUINISTRY (default ./quinistry), CI=true (a missing tool fails).
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tests/lib.sh
. tests/lib.sh
export LC_ALL=C # the log is bytes; grep must not read them as UTF-8
export TZ=Asia/Kathmandu # UTC+05:45: a log in local time would show

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
DUR='[0-9]+\.[0-9]{3}ms'
# no User-Agent: an unquoted - (a UA "-" is quoted like any other)
NO_UA=-
# a whole request line: the UA quoted (every '"' and '\' in it escaped) or -
LINE="^$TS [^ ]+ [^ ]+ [^ ]+ [0-9]{3} [0-9]+ $DUR [a-z-]+ "'("([^"\\]|\\.)*"|-)$'
BANNER='serving quinistry:latest|listening on'
TLS_HINT='TLS handshake on the plain HTTP port: configure the client for HTTP'
NS=qt-ops-$$

# ---------------------------------------------------------------- helpers

# raw ADDR BYTES: BYTES (printf %b escapes) on a new connection; prints
# what comes back until the server closes (at most 3 s).
raw() {
	local fd
	exec {fd}<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
	printf '%b' "$2" >&"$fd"
	timeout 3 cat <&"$fd"
	exec {fd}<&-
}
# ua_get UA: GET /v2/ with that User-Agent (printf %b escapes), one request
ua_get() {
	raw "$ADDR" "GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: $1\r\nConnection: close\r\n\r\n"
	SENT=$((SENT + 1))
}
# get URL [curl args]: the status code (000: no connection)
get() { curl -gs -m 3 -o /dev/null -w '%{http_code}' "$@"; }
# req_lines LOG: how many request lines LOG holds
req_lines() { grep -cE "^$TS " "$1"; }
# wait_for LOG ERE [N]: until LOG has N (default 1) lines matching ERE,
# at most 3 s (the log is written at the end of the loop pass)
wait_for() {
	local _
	for _ in $(seq 60); do
		[ "$(grep -cE -- "$2" "$1")" -ge "${3:-1}" ] && return 0
		sleep 0.05
	done
	return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; } # SIGTERM, wait
digest() { sed -n "s/^  $1 *\(sha256:[0-9a-f]*\).*/\1/p" "$2"; } # NAME LOG
times() { printf "$1%.0s" $(seq "$2"); } # times TEXT N: TEXT N times

# ---------------------------------------------------------------- the CLI

# cli DESC STATUS PHRASE COMMAND...: COMMAND exits STATUS and its stderr
# holds PHRASE; a usage error (2) ends with the --help hint, a start-up
# failure (1) does not; neither prints the banner.
cli() {
	local d=$1 want=$2 phrase=$3 rc why=
	shift 3
	timeout 5 "$@" </dev/null >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = "$want" ] || why="exit $rc, not $want;"
	grep -qF -- "$phrase" "$T/err" || why="$why no '$phrase';"
	if [ "$want" = 2 ]; then
		grep -qxF "try 'quinistry --help'" "$T/err" || why="$why no --help hint;"
	elif grep -qF -- '--help' "$T/err"; then
		why="$why a --help hint for a failure that is no usage error;"
	fi
	! grep -qE "$BANNER" "$T/err" || why="$why the banner came first;"
	if [ -z "$why" ]; then
		ok "cli: $d: exit $want, '$phrase', no banner"
	else
		diag <"$T/err"
		nok "cli: $d:$why"
	fi
}

help_ok() { # the --help text (on one line) in $1
	grep -qF "(default [::]:8080)" <<<"$1" &&
		grep -qF "PORT=N in the environment" <<<"$1" &&
		grep -qF "port 0 picks a free one" <<<"$1"
}

cli_suite() {
	local a port help
	a="want ADDR:PORT: ADDR an IP literal, [::1] for IPv6, or localhost; PORT 0 to 65535"
	cli "-c 0" 2 "bad connection count 0 (want 1 to 1048576)" "$Q" -c 0
	cli "--max-conns=1048577" 2 "(want 1 to 1048576)" "$Q" --max-conns=1048577
	cli "-t 0" 2 "bad idle timeout 0 (want 1 to 3600 s)" "$Q" -t 0
	cli "-t 3601" 2 "(want 1 to 3600 s)" "$Q" -t 3601
	cli "-l myhost:1 (a name)" 2 "bad listen address myhost:1 ($a)" "$Q" -l myhost:1
	cli "-l 127.0.0.1:65536" 2 "$a" "$Q" -l 127.0.0.1:65536
	cli "-l [::1:80 (no bracket)" 2 "$a" "$Q" -l '[::1:80'
	cli "PORT=70000" 2 "bad PORT 70000 (want 0 to 65535)" env PORT=70000 "$Q"
	cli "PORT=x" 2 "bad PORT x (want 0 to 65535)" env PORT=x "$Q"
	cli "--bogus" 2 "unknown option --bogus" "$Q" --bogus
	cli "-x" 2 "unknown option -x" "$Q" -x
	cli "-l without a value" 2 "missing value for -l" "$Q" -l
	cli "--listen without a value" 2 "missing value for --listen" "$Q" --listen
	cli "a stray argument" 2 "unknown argument stray" "$Q" stray
	cli "export -o without a file" 2 "missing value for -o" "$Q" export -o
	cli "export --output without a file" 2 "missing value for --output" \
		"$Q" export --output
	cli "export -l (a server option)" 2 "unknown option -l" "$Q" export -l x
	cli "source -o without a file" 2 "missing value for -o" "$Q" source -o
	cli "source -q (a server option)" 2 "unknown option -q" "$Q" source -q
	# 192.0.2.1 (TEST-NET-1) is on no interface: bind() fails, no packet.
	# The reason is strerror's, which differs between libcs.
	cli "-l 192.0.2.1:8080 (not an address here)" 1 \
		"cannot listen on 192.0.2.1:8080: " "$Q" -l 192.0.2.1:8080
	if start "$T/held.log" "$Q" -q -l 127.0.0.1:0; then
		port=${ADDR##*:}
		cli "a port in use" 1 "cannot listen on $ADDR: " "$Q" -l "$ADDR"
		cli "PORT=$port in use (the default [::])" 1 \
			"cannot listen on [::]:$port: " env PORT="$port" "$Q"
		stop "$SPID"
	else
		nok "cli: a server to hold a port starts"
	fi
	help=$("$Q" --help 2>&1)
	check_status $? "cli: --help exits 0"
	help=$(tr -s ' \n' '  ' <<<"$help")
	check "cli: --help: default [::]:8080, PORT=N, port 0 picks a free one" \
		help_ok "$help" || diag <<<"$help"
}

same_tars() { # MEMBER F...: each is the tar $T/stdout.tar, which has MEMBER
	local f
	tar -tf "$T/stdout.tar" | grep -qx "$1" || return 1
	shift
	for f; do cmp "$f" "$T/stdout.tar" || return 1; done
}

# export_suite CMD MEMBER FILE: `quinistry CMD` (export or source) writes
# one tar (holding MEMBER) to -o F, --output=F, --output F or stdout; to a
# terminal (script(1) gives it one) it suggests `> FILE` instead
export_suite() {
	local c=$1 rc= out
	"$Q" "$c" -o "$T/o.tar" 2>"$T/err" || rc="$rc -o"
	"$Q" "$c" --output="$T/output.tar" 2>>"$T/err" || rc="$rc --output="
	"$Q" "$c" --output "$T/output2.tar" 2>>"$T/err" || rc="$rc --output"
	"$Q" "$c" >"$T/stdout.tar" 2>>"$T/err" || rc="$rc stdout"
	diag <"$T/err"
	check_status "${rc:-0}" "$c: -o F, --output=F, --output F and > F exit 0${rc:+ (not:$rc)}"
	check "$c: all four write the same tar ($(stat -c %s "$T/stdout.tar") bytes)" \
		same_tars "$2" "$T/o.tar" "$T/output.tar" "$T/output2.tar"
	out=$(script -qec "$Q $c; echo rc=\$?" /dev/null 2>&1 | tr -d '\r')
	check "$c to a terminal: exit 2, 'redirect it (quinistry $c > $3)'" \
		grep -qz "redirect it (quinistry $c > $3) or use -o FILE.*rc=2" <<<"$out"
}

# ---------------------------------------------------------------- the log

# logged UA DESC ERE: the request line for User-Agent UA (sent by curl -A)
# matches ERE (given from the method on) after the time and the client
logged() {
	local ua=$1 d=$2 want="^$TS 127\.0\.0\.1:[0-9]+ $3 \"$1\"$"
	wait_for "$LOG" " \"$ua\"$"
	check "log: $d" grep -qE -- "$want" "$LOG" ||
		{ grep -F " \"$ua\"" "$LOG"; echo "want: $want"; } | diag
}
# fetch UA PATH [curl args]: GET with that User-Agent; BYTES the body size
fetch() {
	local ua=$1 p=$2
	shift 2
	curl -s -m 3 -o "$T/body" -A "$ua" "$@" "http://$ADDR$p" >/dev/null
	SENT=$((SENT + 1))
	BYTES=$(stat -c %s "$T/body")
}

log_suite() {
	local ts ms m=/v2/quinistry/manifests
	LOG=$T/log SENT=0
	start "$LOG" "$Q" -l 127.0.0.1:0 || { nok "log: server starts"; return 1; }
	CONFIG=$(digest config "$LOG") LAYER=$(digest layer "$LOG")
	fetch ops/docker $m/latest
	logged ops/docker "docker manifest: time (UTC, ms), client, GET, target, 200, \
bytes, duration, docker-manifest, UA" \
		"GET $m/latest 200 $BYTES $DUR docker-manifest"
	ts=$(grep -E ' "ops/docker"$' "$LOG" | cut -d' ' -f1)
	ms=$(($(date -d "$ts" +%s%3N 2>/dev/null || echo 0) - $(now_ms)))
	check "log: the time is UTC now to the millisecond ($ts, ${ms} ms off)" \
		test "${ms#-}" -lt 5000
	fetch ops/oci $m/latest -H 'Accept: application/vnd.oci.image.manifest.v1+json'
	logged ops/oci "Accept: OCI -> oci-manifest" "GET $m/latest 200 $BYTES $DUR oci-manifest"
	fetch ops/head $m/latest -I
	logged ops/head "HEAD: 0 body bytes" "HEAD $m/latest 200 0 $DUR docker-manifest"
	fetch ops/config "/v2/quinistry/blobs/$CONFIG"
	logged ops/config "the config blob -> config" \
		"GET /v2/quinistry/blobs/$CONFIG 200 $BYTES $DUR config"
	fetch ops/layer "/v2/quinistry/blobs/$LAYER"
	logged ops/layer "the layer blob -> layer ($BYTES bytes)" \
		"GET /v2/quinistry/blobs/$LAYER 200 $BYTES $DUR layer"
	fetch ops/range "/v2/quinistry/blobs/$LAYER" -r 0-99
	logged ops/range "a range of the layer: 206, 100 bytes" \
		"GET /v2/quinistry/blobs/$LAYER 206 100 $DUR layer"
	fetch ops/base /v2/
	logged ops/base "/v2/ -> base" "GET /v2/ 200 2 $DUR base"
	fetch ops/tags /v2/quinistry/tags/list
	logged ops/tags "tags/list -> tags" "GET /v2/quinistry/tags/list 200 $BYTES $DUR tags"
	fetch ops/catalog /v2/_catalog
	logged ops/catalog "_catalog -> catalog" "GET /v2/_catalog 200 $BYTES $DUR catalog"
	fetch ops/referrers "/v2/quinistry/referrers/$CONFIG"
	logged ops/referrers "referrers -> referrers" \
		"GET /v2/quinistry/referrers/$CONFIG 200 $BYTES $DUR referrers"
	fetch ops/error $m/v9
	logged ops/error "a 404 -> error" "GET $m/v9 404 $BYTES $DUR error"
	fetch '' /v2/ # curl -A '' sends no User-Agent
	wait_for "$LOG" " base $NO_UA$"
	check "log: no User-Agent: an unquoted -" \
		grep -qE "^$TS 127\.0\.0\.1:[0-9]+ GET /v2/ 200 2 $DUR base $NO_UA$" "$LOG"
	fetch ops/long "/v2/$(times a 296)"
	logged ops/long "a 300-byte target: its first 200 bytes and ..." \
		"GET /v2/a{196}\.\.\. 404 $BYTES $DUR error"
	fetch ops/200 "/v2/$(times a 196)"
	logged ops/200 "a 200-byte target: whole" "GET /v2/a{196} 404 $BYTES $DUR error"
	duration_check
	hostile_ua
	tls_check
	wait_for "$LOG" "^$TS " "$SENT"
	check "log: one line per request ($SENT sent, $(req_lines "$LOG") logged)" \
		test "$(req_lines "$LOG")" = "$SENT"
	check "log: every request line is well formed (the UA quoted, or -)" \
		not_grep -vE "$LINE" <(grep -E "^$TS " "$LOG")
	stop "$SPID"
}
not_grep() { ! grep "$@"; } # its matches shown (on stderr, by check)

# The duration runs from the request's first byte: a head sent in two
# parts 400 ms apart takes at least 400 ms.
duration_check() {
	local fd ms
	exec {fd}<>"/dev/tcp/127.0.0.1/${ADDR##*:}"
	printf 'GET /v2/ HTTP/1.1\r\n' >&"$fd"
	sleep 0.4
	printf 'Host: x\r\nUser-Agent: ops/slow\r\nConnection: close\r\n\r\n' >&"$fd"
	timeout 3 cat <&"$fd" >/dev/null
	exec {fd}<&-
	SENT=$((SENT + 1))
	wait_for "$LOG" ' "ops/slow"$'
	ms=$(grep -E ' "ops/slow"$' "$LOG" | grep -oE "$DUR" | cut -d. -f1)
	check "log: the duration counts from the first byte (head in two parts \
400 ms apart: ${ms:-?} ms)" \
		test "${ms:-0}" -ge 400 -a "${ms:-0}" -lt 3000
}

one_escaped_line() { # WANT: the hostile UA's line, as one line, escaped
	[ "$(grep -c forged "$LOG")" = 1 ] &&
		grep -E "^$TS 127\.0\.0\.1:[0-9]+ GET /v2/ 200 2 $DUR base " "$LOG" |
		grep -qF " base $1" && ! grep -q "^2026-12-01T00:00:00" "$LOG"
}
refused_unlogged() { # K: the K-th 400 without a UA is logged, no "layer-"
	head -n 1 "$T/resp" | grep -q "^HTTP/1.1 400" &&
		wait_for "$LOG" "^$TS [^ ]+ - - 400 [0-9]+ $DUR error $NO_UA$" "$1" &&
		! grep -q "layer-" "$LOG"
}

# A User-Agent that tries to end its quotes, add fields, or start a line
# of its own: escaped, it stays one field of one line.
hostile_ua() {
	local fake='2026-12-01T00:00:00.000Z 6.6.6.6:1 GET /forged 200 0 0.001ms layer'
	local got k=0 ua want
	# as raw sends it (printf %b): a " b \ c TAB 0x80 0xff ...
	ua='a"b\\c\t\x80\xff '"$fake"' "x"'
	want='"a\"b\\c\x09\x80\xff '"$fake"' \"x\""'
	ua_get "$ua" >"$T/resp"
	got=$(head -n 1 "$T/resp" | tr -d '\r')
	wait_for "$LOG" "/forged"
	check "log: a hostile UA (\" \\ tab 0x80 0xff, a forged line) gets a 200 ($got)" \
		test "$got" = "HTTP/1.1 200 OK"
	check "log: ... and stays one line, escaped: $want" one_escaped_line "$want" ||
		grep -a forged "$LOG" | diag
	# a line break in a field is refused whole: nothing of it is logged
	for got in '\n' '\r'; do
		raw "$ADDR" "GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: x${got}$fake-$got\r\n\r\n" \
			>"$T/resp"
		SENT=$((SENT + 1)) k=$((k + 1))
		check "log: a UA with $got: 400, one line, none of its text" refused_unlogged $k
	done
	ua_get - >/dev/null
	wait_for "$LOG" ' base "-"$'
	check "log: a User-Agent \"-\" is quoted, unlike none" grep -qE ' base "-"$' "$LOG"
	ua_get "$(times U 300)" >/dev/null
	ua_get "$(times V 120)" >/dev/null
	ua_get "$(times '\\xff' 300)" >/dev/null
	wait_for "$LOG" ' "\\xff'
	check "log: a 300-byte UA: its first 120 bytes and ..." \
		grep -qE " base \"U{120}\.\.\.\"$" "$LOG"
	check "log: a 120-byte UA: whole" grep -qE " base \"V{120}\"$" "$LOG"
	check "log: a UA of 300 0xff bytes: 120 of them as \\xff, and ..." \
		grep -qE " base \"(\\\\xff){120}\.\.\.\"$" "$LOG"
}

two_tls_lines() {
	[ "$(grep -c "$TLS_HINT" "$LOG")" = 2 ] &&
		[ "$(grep -cE " tls-handshake $NO_UA$" "$LOG")" = 2 ]
}

# A TLS ClientHello (a handshake record, version 3.x) on the plain port
tls_check() {
	local hello='\x16\x03\x01\x00\x31\x01\x00\x00\x2d\x03\x03' port
	raw "$ADDR" "$hello$(printf '\\x%02x' $(seq 0 39))" >"$T/resp"
	SENT=$((SENT + 1))
	check "tls: a ClientHello on the plain port gets a 400" \
		grep -q "^HTTP/1.1 400 " "$T/resp"
	wait_for "$LOG" 'TLS handshake'
	port=$(sed -n "s/^quinistry: 127\.0\.0\.1:\([0-9]*\): $TLS_HINT\$/\1/p" "$LOG")
	check "tls: logged 'quinistry: 127.0.0.1:${port:-?}: $TLS_HINT'" test -n "$port"
	check "tls: its request line says tls-handshake (the same client)" \
		grep -qE "^$TS 127\.0\.0\.1:${port:-x} - - 400 [0-9]+ $DUR tls-handshake $NO_UA$" "$LOG"
	# curl's own ClientHello, and a plain bad request that is no TLS
	curl -sk -m 3 -o /dev/null "https://$ADDR/v2/"
	raw "$ADDR" 'HELLO\r\n\r\n' >/dev/null
	SENT=$((SENT + 2))
	wait_for "$LOG" "^$TS [^ ]+ - - 400 [0-9]+ $DUR error $NO_UA$" 3
	check "tls: curl https:// is logged as a TLS handshake too; a bad request that is no TLS is not" \
		two_tls_lines
}

quiet_log_ok() { # LOG of a -q server: the banner and stop lines only
	[ "$(req_lines "$1")" = 0 ] && ! grep -q "TLS handshake" "$1" &&
		grep -q "serving quinistry:latest" "$1" && grep -q "^quinistry: stopped" "$1"
}

quiet_suite() {
	start "$T/quiet.log" "$Q" -q -l 127.0.0.1:0 || { nok "-q: server starts"; return 1; }
	get "http://$ADDR/v2/" >/dev/null
	get "http://$ADDR/v2/nothing" >/dev/null
	raw "$ADDR" '\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00' >/dev/null
	sleep 0.3
	stop "$SPID"
	check "-q: no request lines, no TLS hint; the banner and the stop lines stay" \
		quiet_log_ok "$T/quiet.log" || diag <"$T/quiet.log"
}

# One write(2) per loop pass: 50 pipelined requests, read in one recv(),
# answered in one pass, cost one write of the log, not 50.
strace_suite() {
	local fd pid before after n logged
	have strace || { missing "log: one write per loop pass" "strace not installed"; return; }
	start "$T/st.log" strace -qq -o "$T/strace" -e trace=write "$Q" -l 127.0.0.1:0 ||
		{ nok "log: the server starts under strace"; return 1; }
	# strace running a command blocks SIGTERM (its -I3): the clean-up
	# stops the server itself, and strace ends with it
	pid=$(pgrep -P "$SPID" | head -n 1)
	[ -n "$pid" ] && PIDS+=("$pid")
	{
		times 'GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: burst\r\n\r\n' 49
		printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: burst\r\n%s\r\n\r\n' \
			'Connection: close'
	} >"$T/burst"
	sleep 0.2
	before=$(grep -c '^write(2,' "$T/strace")
	exec {fd}<>"/dev/tcp/127.0.0.1/${ADDR##*:}"
	cat "$T/burst" >&"$fd" # one write() of 2.5 KB
	n=$(timeout 5 cat <&"$fd" | grep -o 'HTTP/1.1 200' | wc -l)
	exec {fd}<&-
	wait_for "$T/st.log" ' "burst"$' 50
	sleep 0.2
	after=$(($(grep -c '^write(2,' "$T/strace") - before))
	logged=$(grep -c ' "burst"$' "$T/st.log")
	check "log: 50 pipelined requests ($n answered, $logged logged) cost $after \
write(2) calls to stderr (at most 3)" \
		test "$n" = 50 -a "$logged" = 50 -a "$after" -ge 1 -a "$after" -le 3
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait "$SPID" 2>/dev/null
}

# ---------------------------------------------------------------- signals

# signal_case SIG SLOW: two keep-alive connections idle, and with SLOW=1 a
# response under way to a client that reads nothing: SIG's two lines
signal_case() {
	local sig=$1 slow=$2 a b s rc cut=0 layer stopping stopped
	start "$T/$sig.log" "$Q" -l 127.0.0.1:0 || { nok "SIG$sig: server starts"; return 1; }
	exec {a}<>"/dev/tcp/127.0.0.1/${ADDR##*:}" {b}<>"/dev/tcp/127.0.0.1/${ADDR##*:}"
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&"$a"
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&"$b"
	if [ "$slow" = 1 ]; then
		# the layer 20 times, none read: more than the socket buffers
		# hold, so a response is under way at the signal, and is cut
		layer=$(digest layer "$T/$sig.log")
		exec {s}<>"/dev/tcp/127.0.0.1/${ADDR##*:}"
		times "GET /v2/quinistry/blobs/$layer HTTP/1.1\r\nHost: x\r\n\r\n" 20 >&"$s"
		cut=1
	fi
	wait_for "$T/$sig.log" "^$TS .* GET /v2/ 200 " 2
	sleep 0.3
	kill -"$sig" "$SPID"
	wait_exit "$SPID" 10
	rc=$?
	exec {a}<&- {b}<&-
	[ "$slow" = 1 ] && exec {s}<&-
	stopping="quinistry: SIG$sig: stopping; 2 idle connections closed,"
	stopping="$stopping $cut responses have 500 ms to finish"
	stopped="quinistry: stopped; $cut connections cut at the end of the grace"
	check "SIG$sig: logs '$stopping'" grep -qxF "$stopping" "$T/$sig.log" ||
		diag <"$T/$sig.log"
	check "SIG$sig: ends with '$stopped'" test "$(tail -n 1 "$T/$sig.log")" = "$stopped"
	check "SIG$sig: exit status 0 ($rc)" test "$rc" = 0
}

# ---------------------------------------------------------------- listening

both_clients_logged() {
	grep -qE "^$TS \[::1\]:[0-9]+ GET /v2/ " "$1" &&
		grep -qE "^$TS 127\.0\.0\.1:[0-9]+ GET /v2/ " "$1"
}

dual_stack_suite() {
	local p
	start "$T/ds.log" env PORT=0 "$Q" || { nok "dual stack: PORT=0 server starts"; return 1; }
	p=${ADDR##*:}
	check "dual stack: PORT=0, no -l: 'listening on [::]:$p'" \
		grep -qx "quinistry: listening on \[::\]:$p" "$T/ds.log"
	check "dual stack: IPv6 http://[::1]:$p/v2/ answers 200" \
		test "$(get "http://[::1]:$p/v2/")" = 200
	check "dual stack: IPv4 http://127.0.0.1:$p/v2/ answers 200" \
		test "$(get "http://127.0.0.1:$p/v2/")" = 200
	wait_for "$T/ds.log" "^$TS " 2
	check "dual stack: the log names the clients [::1]:N and 127.0.0.1:N (not ::ffff:)" \
		both_clients_logged "$T/ds.log"
	check "dual stack: no 'no IPv6 here' line where there is IPv6" \
		not_grep "no IPv6" "$T/ds.log"
	stop "$SPID"
	start "$T/l4.log" "$Q" -l 127.0.0.1:0 || { nok "-l 127.0.0.1:0 starts"; return 1; }
	p=${ADDR##*:}
	check "-l 127.0.0.1:0 is kept: IPv4 answers 200" test "$(get "http://127.0.0.1:$p/v2/")" = 200
	check "-l 127.0.0.1:0 is kept: [::1]:$p is refused" test "$(get "http://[::1]:$p/v2/")" = 000
	stop "$SPID"
	start "$T/l6.log" "$Q" -l '[::1]:0' || { nok "-l [::1]:0 starts"; return 1; }
	p=${ADDR##*:}
	check "-l [::1]:0 is kept: 'listening on [::1]:$p', IPv6 answers 200" \
		test "$ADDR:$(get "http://[::1]:$p/v2/")" = "[::1]:$p:200"
	check "-l [::1]:0 is kept: 127.0.0.1:$p is refused" \
		test "$(get "http://127.0.0.1:$p/v2/")" = 000
	stop "$SPID"
}

# tests/noipv6.c: socket(AF_INET6) fails with EAFNOSUPPORT, as on a kernel
# booted with ipv6.disable=1 (a network namespace cannot take the family
# away: there socket() works and only the addresses go)
NOIPV6=
build_noipv6() {
	local cc d="noipv6: tests/noipv6.c builds with -std=c99 -Wall -Wextra -pedantic, no warnings"
	cc=$(command -v cc || command -v gcc) || { missing "$d" "no C compiler"; return 1; }
	if ! "$cc" -std=c99 -Wall -Wextra -pedantic -O2 -o "$T/noipv6" tests/noipv6.c \
		2>"$T/cc.log" || [ -s "$T/cc.log" ]; then
		diag <"$T/cc.log"
		nok "$d"
		return 1
	fi
	ok "$d"
	"$T/noipv6" true 2>"$T/err"
	if [ $? = 125 ]; then
		missing "noipv6: the seccomp filter" "$(cat "$T/err")"
		return 1
	fi
	NOIPV6=$T/noipv6
}

noipv6_suite() {
	local p
	build_noipv6 || return
	have python3 &&
		check "noipv6: its filter refuses socket(AF_INET6) with EAFNOSUPPORT, allows AF_INET" \
			"$NOIPV6" python3 -c 'import errno, socket
socket.socket(socket.AF_INET).close()
try:
    socket.socket(socket.AF_INET6)
    raise SystemExit("AF_INET6 allowed")
except OSError as e:
    assert e.errno == errno.EAFNOSUPPORT, e'
	start "$T/n4.log" env PORT=0 "$NOIPV6" "$Q" ||
		{ diag <"$T/n4.log"; nok "no IPv6: the default server starts"; return 1; }
	p=${ADDR##*:}
	check "no IPv6: says 'quinistry: no IPv6 here (...): listening on IPv4 only'" \
		grep -qE "^quinistry: no IPv6 here \([^)]+\): listening on IPv4 only$" "$T/n4.log"
	check "no IPv6: 'listening on 0.0.0.0:$p'" test "$ADDR" = "0.0.0.0:$p"
	check "no IPv6: IPv4 answers 200" test "$(get "http://127.0.0.1:$p/v2/")" = 200
	stop "$SPID"
	cli "no IPv6, explicit -l [::]:0 (never changed)" 1 "cannot listen on [::]:0: " \
		"$NOIPV6" "$Q" -l '[::]:0'
}

# A network namespace of our own with IPv6 disabled by sysctl: the default
# server (port 8080 there, which nothing else uses) serves IPv4 inside it;
# the same under noipv6 takes the fallback.
netns_del() { ip netns del "$NS" 2>/dev/null; }
in_ns() { ip netns exec "$NS" "$@"; }
ns_get() { in_ns curl -s -m 3 -o /dev/null -w '%{http_code}' "$1"; }
no_ipv6_addr() { [ -z "$(in_ns ip -6 addr show)" ]; }
netns_suite() {
	local d="netns without IPv6:"
	if [ "$(id -u)" != 0 ] || ! have ip; then
		missing "$d the default server serves IPv4" "needs root and ip(8)"
		return
	fi
	ip netns add "$NS" || { nok "$d ip netns add $NS"; return 1; }
	at_exit netns_del
	if ! in_ns sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1 ||
		! in_ns ip link set lo up; then
		nok "$d set up"
		return 1
	fi
	check "$d no IPv6 address in it ($NS)" no_ipv6_addr
	start "$T/ns.log" ip netns exec "$NS" "$Q" ||
		{ diag <"$T/ns.log"; nok "$d the default server starts"; return 1; }
	check "$d the default server listens ($ADDR, port 8080)" test "${ADDR##*:}" = 8080
	check "$d IPv4 http://127.0.0.1:8080/v2/ answers 200 in it" \
		test "$(ns_get http://127.0.0.1:8080/v2/)" = 200
	stop "$SPID"
	[ -n "$NOIPV6" ] || return
	start "$T/ns4.log" ip netns exec "$NS" "$NOIPV6" "$Q" ||
		{ diag <"$T/ns4.log"; nok "$d the server under noipv6 starts"; return 1; }
	check "$d under noipv6: 'no IPv6 here', listening on 0.0.0.0:8080 ($ADDR)" \
		test "$(grep -c '^quinistry: no IPv6 here' "$T/ns4.log"):$ADDR" = 1:0.0.0.0:8080
	check "$d under noipv6: IPv4 answers 200" \
		test "$(ns_get http://127.0.0.1:8080/v2/)" = 200
	stop "$SPID"
}

cli_suite
export_suite export oci-layout quinistry.tar
export_suite source quinistry.c source.tar
log_suite
quiet_suite
strace_suite
signal_case TERM 1
signal_case INT 0
dual_stack_suite
noipv6_suite
netns_suite
exit 0
