#!/usr/bin/env bash
# Runs every test suite and ends with one line: N passed, N failed.
#
# Each suite prints one line per check: "ok - ...", "not ok - ..." or
# "skip - ...". This script counts them. A suite that exits non-zero
# without reporting a failure counts as one failure, so a crash can never
# pass silently. Run it through `make test`, which builds ./quinistry and
# ./quinistry-asan first. FUZZ_SECONDS sets the fuzzing time (60 in CI).
set -u
cd "$(dirname "$0")"
export CI=${CI:-}
LOG=$(mktemp)
BIN=$(mktemp -d)
trap 'rm -rf "$LOG" "$BIN"' EXIT

suite() { # suite NAME COMMAND...: run it, show its output, keep its lines
	local name=$1 rc; shift
	echo "# --- $name"
	"$@" 2>"$BIN/stderr" | tee "$BIN/out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ] && ! grep -q '^not ok' "$BIN/out"; then
		sed 's/^/#   /' "$BIN/stderr" | tail -20
		echo "not ok - $name exited $rc" | tee -a "$BIN/out"
	elif grep -q '^not ok' "$BIN/out"; then
		sed 's/^/#   /' "$BIN/stderr" | tail -20
	fi
	cat "$BIN/out" >>"$LOG"
}

sha_suite() {
	cc -std=c99 -Wall -Wextra -pedantic -O2 -I. tests/test_sha256.c sha256.c \
		-o "$BIN/test_sha256" || return 1
	"$BIN/test_sha256"
	local ours theirs
	ours=$("$BIN/test_sha256" ./quinistry)
	theirs=$(sha256sum ./quinistry | cut -d' ' -f1)
	if [ "$ours" = "$theirs" ]; then
		echo "ok - sha256: our digest of ./quinistry equals sha256sum's"
	else
		echo "not ok - sha256: ./quinistry: $ours vs sha256sum $theirs"
	fi
}

unit_suite() {
	cc -std=c99 -Wall -Wextra -pedantic -g -fsanitize=address,undefined \
		-fno-sanitize-recover=all -I. tests/unit.c sha256.c -o "$BIN/unit" || return 1
	"$BIN/unit"
}

warnings_suite() {
	local cc out
	for cc in gcc clang; do
		command -v $cc >/dev/null || { echo "skip - $cc not installed"; continue; }
		out=$($cc -std=c99 -Wall -Wextra -pedantic -O2 -c quinistry.c -o /dev/null 2>&1 &&
			$cc -std=c99 -Wall -Wextra -pedantic -O2 -c sha256.c -o /dev/null 2>&1)
		if [ -z "$out" ]; then echo "ok - $cc -std=c99 -Wall -Wextra -pedantic: no warnings"
		else echo "$out" >&2; echo "not ok - $cc warns"; fi
	done
	if file ./quinistry 2>/dev/null | grep -q 'statically linked' ||
		! readelf -l ./quinistry 2>/dev/null | grep -q INTERP; then
		echo "ok - ./quinistry is statically linked ($(stat -c %s ./quinistry) bytes)"
	else
		echo "not ok - ./quinistry is dynamically linked"
	fi
}

suite "build warnings" warnings_suite
suite "sha256" sha_suite
suite "unit" unit_suite
suite "protocol" env QUINISTRY=./quinistry tests/protocol.sh
suite "protocol (ASan+UBSan build)" env QUINISTRY=./quinistry-asan \
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 tests/protocol.sh
for s in limits mechanisms latency hostile ops export clients verify k8s cri tls readme; do
	[ -x tests/$s.sh ] || { echo "not ok - tests/$s.sh is missing" >>"$LOG"; continue; }
	suite "$s" env QUINISTRY=./quinistry tests/$s.sh
done
[ -x tests/hostile.sh ] && suite "hostile (ASan+UBSan build)" env QUINISTRY=./quinistry-asan \
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
	tests/hostile.sh
suite "valgrind" tests/valgrind.sh
suite "fuzz" env FUZZ_SECONDS=${FUZZ_SECONDS:-$([ "$CI" = true ] && echo 60 || echo 10)} tests/fuzz.sh

passed=$(grep -c '^ok' "$LOG")
failed=$(grep -c '^not ok' "$LOG")
skipped=$(grep -c '^skip' "$LOG")
echo
grep '^not ok' "$LOG" | sed 's/^/# FAILED: /'
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
