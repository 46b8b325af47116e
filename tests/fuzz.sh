#!/usr/bin/env bash
# Build and run the libFuzzer harness over the request parser and router.
# FUZZ_SECONDS (default 60) bounds the run. Prints ok/not ok lines.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
secs=${FUZZ_SECONDS:-60}
if ! have clang; then missing "fuzz" "clang missing"; exit 0; fi
if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I. tests/fuzz_request.c sha256.c -o "$T/fuzz_request" 2>"$T/cc.log"; then
	cat "$T/cc.log" >&2
	nok "fuzz: the harness builds (clang -fsanitize=fuzzer; libclang-rt-14-dev)"
	exit 1
fi
ok "fuzz: the harness builds"
# New inputs go to a scratch corpus; the committed seeds stay as they are.
mkdir "$T/corpus"
"$T/fuzz_request" -max_total_time="$secs" -max_len=8192 -dict=tests/fuzz.dict \
	-artifact_prefix="$T/" -print_final_stats=1 \
	"$T/corpus" tests/fuzz-corpus >"$T/run.log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/run.log")
if [ $rc = 0 ]; then
	ok "fuzz: ${secs}s, ${execs:-?} executions, no crash"
else
	tail -40 "$T/run.log" >&2
	ls "$T"/crash-* "$T"/leak-* 2>/dev/null >&2
	nok "fuzz: crash after ${execs:-?} executions (see stderr)"
fi
