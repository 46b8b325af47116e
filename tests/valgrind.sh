#!/usr/bin/env bash
# A short run of the server under valgrind memcheck: a few requests of
# every kind, pipelined and bad ones included, then SIGTERM. Passes when
# valgrind reports no errors (invalid reads/writes, uninitialised use) and
# no leaked blocks.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
if ! have valgrind; then missing "valgrind" "not installed"; exit 0; fi
cc -std=c99 -g -O1 -o "$T/q" quinistry.c sha256.c
if ! start "$T/log" valgrind --leak-check=full \
	--show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
	--log-file="$T/vg.log" "$T/q" -l 127.0.0.1:0; then
	diag <"$T/log"
	nok "valgrind: the server starts under valgrind"
	exit 1
fi
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
kill -TERM "$SPID"; wait "$SPID"; rc=$?
exec 3<&-
errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$T/vg.log" | tail -1)
if [ "$rc" = 0 ] && [ "$errs" = 0 ]; then
	ok "valgrind: no memory errors, no leaks, exit 0 after SIGTERM"
else
	cat "$T/vg.log" >&2
	nok "valgrind: exit $rc, ${errs:-?} errors"
fi
