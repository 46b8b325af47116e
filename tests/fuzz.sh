#!/usr/bin/env bash
# Build and run the libFuzzer harness over the request parser and router.
# FUZZ_SECONDS (default 60) bounds the run. Prints ok/not ok lines.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! command -v clang >/dev/null; then
	if [ "${CI:-}" = true ]; then echo "not ok - fuzz: clang missing"; exit 1; fi
	echo "skip - fuzz: clang missing"; exit 0
fi
if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I. tests/fuzz_request.c sha256.c -o "$out/fuzz_request" 2>"$out/cc.log"; then
	cat "$out/cc.log" >&2
	echo "not ok - fuzz: the harness builds (clang -fsanitize=fuzzer; libclang-rt-14-dev)"
	exit 1
fi
echo "ok - fuzz: the harness builds"
# New inputs go to a scratch corpus; the committed seeds stay as they are.
mkdir "$out/corpus"
"$out/fuzz_request" -max_total_time="$secs" -max_len=8192 -dict=tests/fuzz.dict \
	-artifact_prefix="$out/" -print_final_stats=1 \
	"$out/corpus" tests/fuzz-corpus >"$out/run.log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/run.log")
if [ $rc = 0 ]; then
	echo "ok - fuzz: ${secs}s, ${execs:-?} executions, no crash"
else
	tail -40 "$out/run.log" >&2
	ls "$out"/crash-* "$out"/leak-* 2>/dev/null >&2
	echo "not ok - fuzz: crash after ${execs:-?} executions (see stderr)"
fi
