# Shared by the shell suites (source it): the binary under test as an
# absolute path in Q, a scratch directory T removed on exit along with every
# server started, the result lines test.sh counts, and starting a server
# whose address is read back from its start-up log.
Q=${QUINISTRY:-./quinistry}
case $Q in /*) ;; *) Q=$PWD/$Q ;; esac
T=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; }
check() { # check DESC COMMAND...: ok if the command succeeds
	local d=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else nok "$d"; fi
}

# wait_listening LOG: wait (up to 5 s) for "listening on ADDR:PORT" in a
# server's log and set ADDR.
wait_listening() {
	local i
	for i in $(seq 100); do
		ADDR=$(sed -n 's/^quinistry: listening on //p' "$1")
		[ -n "$ADDR" ] && return 0
		sleep 0.05
	done
	return 1
}

# start LOG COMMAND...: run a server in the background, its stderr in LOG;
# sets SPID and ADDR.
start() {
	local log=$1; shift
	"$@" 2>"$log" &
	SPID=$!
	PIDS+=($SPID)
	wait_listening "$log"
}
