# shellcheck shell=bash
# The harness of every shell suite: source it after `cd` to the repository
# root. It gives
#  - Q, the binary under test as an absolute path (QUINISTRY, default
#    ./quinistry), and CI (true: a missing tool fails instead of skipping);
#  - T, a scratch directory, and the clean-up at exit, also on Ctrl-C or
#    SIGTERM: the servers in PIDS are stopped, the at_exit hooks run, T is
#    removed (unless KEEP_TMP=1);
#  - the result lines test.sh counts: ok, nok (counted in FAILS), skip,
#    missing, check, check_status; diag for comment lines;
#  - probes: have, is_static, limit, proc_field, now_ms, ms_since;
#  - servers: start and wait_listening (SPID, ADDR).
Q=${QUINISTRY:-./quinistry}
case $Q in /*) ;; *) Q=$PWD/${Q#./} ;; esac
CI=${CI:-}
T=${0##*/}
T=$(mktemp -d "${TMPDIR:-/tmp}/qt-${T%.sh}.XXXXXX") || exit 1
PIDS=()
FAILS=0
EXIT_HOOKS=()

at_exit() { EXIT_HOOKS+=("$1"); } # at_exit FUNCTION: run it at clean-up

# Servers first, so that nothing they hold keeps a hook from its work.
cleanup() {
	local p h
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for h in "${EXIT_HOOKS[@]}"; do "$h"; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ "${KEEP_TMP:-}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
skip() { echo "skip - $*"; }
diag() { sed 's/^/# /' >&2; } # stdin as comment lines, on stderr
# missing DESC REASON: a tool or daemon is not there; under CI that fails.
missing() {
	if [ "$CI" = true ]; then nok "$1 ($2)"; else skip "$1 ($2)"; fi
}
# check DESC COMMAND...: ok if the command succeeds, else not ok and
# status 1. What the command prints goes to stderr, which test.sh shows
# when a check fails.
check() {
	local d=$1; shift
	if "$@" >&2; then ok "$d"; else nok "$d"; return 1; fi
}
# check_status STATUS DESC: the same for a condition already run ($?).
check_status() {
	if [ "$1" = 0 ]; then ok "$2"; else nok "$2"; return 1; fi
}

have() { command -v "$1" >/dev/null 2>&1; }
# is_static [FILE]: FILE (default $Q) has no program interpreter, so it
# runs in an image that holds nothing else.
is_static() {
	local f=${1:-$Q}
	if have readelf; then
		readelf -lW "$f" 2>/dev/null | grep -q 'Elf file type' &&
			! readelf -lW "$f" 2>/dev/null | grep -q INTERP
	elif have file; then
		file -L "$f" | grep -Eq 'statically linked|static-pie linked'
	fi
}
# limit NAME DEFAULT: a #define of quinistry.c's Limits block, else DEFAULT.
limit() {
	local v=
	[ -f quinistry.c ] &&
		v=$(sed -n "s/^#define $1 \([0-9][0-9]*\).*/\1/p" quinistry.c | head -n 1)
	echo "${v:-$2}"
}
# proc_field PID NAME: the (first) value of NAME in /proc/PID/status
proc_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }
# wait_exit PID SECONDS: wait for PID to exit, at most SECONDS; its exit
# status, or 124 when it had to be killed (a test must never hang)
wait_exit() {
	local _
	for _ in $(seq $(($2 * 100))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1"
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
ms_since() { echo $(($(now_ms) - $1)); } # ms_since T0 (a now_ms)

# wait_listening LOG [PID]: wait up to 10 s (less if PID dies) for
# "listening on ADDR:PORT" in a server's log; sets ADDR.
wait_listening() {
	local _
	for _ in $(seq 200); do
		ADDR=$(sed -n 's/^quinistry: listening on //p' "$1" 2>/dev/null)
		[ -n "$ADDR" ] && return 0
		[ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
		sleep 0.05
	done
	return 1
}

# start LOG COMMAND...: run a server in the background, its stderr in LOG,
# and wait until it listens; sets SPID (also added to PIDS) and ADDR.
start() {
	local log=$1; shift
	"$@" 2>"$log" &
	SPID=$!
	PIDS+=("$SPID")
	wait_listening "$log" "$SPID"
}
