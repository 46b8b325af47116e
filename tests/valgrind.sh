#!/usr/bin/env bash
# A short run of the server under valgrind memcheck: a few requests of
# every kind, pipelined and bad ones included, then SIGTERM. Passes when
# valgrind reports no errors (invalid reads/writes, uninitialised use) and
# no leaked blocks.
set -u
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
	if [ "${CI:-}" = true ]; then echo "not ok - valgrind: missing"; exit 1; fi
	echo "skip - valgrind: not installed"; exit 0
fi
T=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$T"' EXIT
cc -std=c99 -g -O1 -o "$T/q" quinistry.c sha256.c
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
	--log-file="$T/vg.log" "$T/q" -l 127.0.0.1:0 2>"$T/log" &
PID=$!
for i in $(seq 200); do
	ADDR=$(sed -n 's/^quinistry: listening on //p' "$T/log"); [ -n "$ADDR" ] && break
	sleep 0.05
done
B="http://$ADDR"
L=$(sed -n 's/^  layer *\(sha256:[0-9a-f]*\).*/\1/p' "$T/log")
curl -s "$B/v2/" "$B/v2/quinistry/manifests/latest" "$B/v2/quinistry/blobs/$L" \
	"$B/v2/quinistry/tags/list?n=0" "$B/v2/_catalog" "$B/v2/nope/manifests/x" >/dev/null
curl -s -r 5-10 "$B/v2/quinistry/blobs/$L" -o /dev/null
curl -s -X PUT -d x "$B/v2/quinistry/blobs/uploads/" -o /dev/null
exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}"
printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n' >&3
timeout 5 cat <&3 >/dev/null
exec 3<&-
exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}"
printf 'GET /v2/quinistry/manif' >&3   # left half-sent at shutdown
sleep 0.5
kill -TERM $PID; wait $PID; rc=$?
exec 3<&-
errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$T/vg.log" | tail -1)
if [ "$rc" = 0 ] && [ "$errs" = 0 ]; then
	echo "ok - valgrind: no memory errors, no leaks, exit 0 after SIGTERM"
else
	cat "$T/vg.log" >&2
	echo "not ok - valgrind: exit $rc, ${errs:-?} errors"
fi
