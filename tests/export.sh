#!/bin/bash
# `quinistry export`: one tar that is both a docker-archive and an OCI image
# layout. Checks the tar itself, then that skopeo (docker-archive: and
# oci-archive:), docker load, podman load and ctr images import accept it,
# give the image ID / config digest the server logs, and that the loaded
# image runs and serves the same manifest digest.
#
# Env: QUINISTRY (default ./quinistry), CI=true (missing tool = not ok),
# QT_DAEMONS_ENV (see tests/daemons.sh; started here if absent and root).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/clientlib.sh || exit 1

begin_suite qt-export
TAG=qtx$$
NS=quinistry-export
CTR_NS=$NS
PM_STORES=("") # one store, $T/podman

json() { # file python-expression-on-j [args for sys.argv[3:]]
	local f=$1 e=$2
	shift 2
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$f" "$e" "$@" 2>/dev/null
}
blob_ok() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }
tar_size_ok() { [ -s "$1" ] && [ $(($(stat -c %s "$1") % 512)) = 0 ]; }

# The digests the server logs at start-up.
server_digests() {
	start_server "$T/server.log" -q
	kill "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
	log_digests "$T/server.log" || { diag <"$T/server.log"; return 1; }
}

# ---------------------------------------------------------------- the tar
tar_suite() {
	local d="export:" X="$T/x" h f list
	rm -rf "$X" && mkdir -p "$X"
	if ! tar -xf "$F" -C "$X" 2>"$T/err"; then
		diag <"$T/err"; nok "$d the export is a tar that tar extracts"; return 1
	fi
	ok "$d the export is a tar that tar extracts"
	list=$(tar -tf "$F" | sort | tr '\n' ' ')
	check "$d holds exactly oci-layout, index.json, manifest.json and the three blobs" \
		[ "$list" = "$(printf '%s\n' oci-layout index.json manifest.json blobs/ blobs/sha256/ \
			"blobs/sha256/${O#sha256:}" "blobs/sha256/${CFG#sha256:}" "blobs/sha256/${L#sha256:}" |
			sort | tr '\n' ' ')" ] || echo "tar members: $list" | diag
	for h in "$O" "$CFG" "$L"; do
		f="$X/blobs/sha256/${h#sha256:}"
		check "$d blob $h matches its name" blob_ok "$f" "$h"
	done
	check "$d oci-layout is version 1.0.0" [ "$(json "$X/oci-layout" 'j["imageLayoutVersion"]')" = 1.0.0 ]
	check "$d index.json points at the OCI manifest" \
		[ "$(json "$X/index.json" 'j["manifests"][0]["digest"]')" = "$O" ]
	check "$d manifest.json: RepoTags [quinistry:latest], config and layer blobs" \
		[ "$(json "$X/manifest.json" 'len(j)==1 and j[0]["RepoTags"]==["quinistry:latest"] and j[0]["Config"]=="blobs/sha256/"+sys.argv[3].split(":")[1] and j[0]["Layers"]==["blobs/sha256/"+sys.argv[4].split(":")[1]]' "$CFG" "$L")" = True ]
	f="$X/blobs/sha256/${L#sha256:}"
	if [ -f "$f" ] && tar -xOf "$f" quinistry >"$T/layer-file" 2>/dev/null; then
		check "$d layer holds the binary, byte for byte" cmp -s "$T/layer-file" "$Q"
	else
		nok "$d layer holds the binary, byte for byte"
	fi
}

# ---------------------------------------------------------------- skopeo
skopeo_suite() {
	local d="export: skopeo" got
	if ! have skopeo; then missing "$d docker-archive:/oci-archive:" "skopeo missing"; return; fi
	got=$(timeout 60 skopeo inspect --raw docker-archive:"$F" 2>"$T/err") || diag <"$T/err"
	printf '%s' "$got" >"$T/da-manifest.json"
	check "$d inspect docker-archive:F works, config $CFG" \
		[ "$(json "$T/da-manifest.json" 'j["config"]["digest"]')" = "$CFG" ]
	got=$(timeout 60 skopeo inspect --raw oci-archive:"$F" 2>"$T/err") || diag <"$T/err"
	printf '%s' "$got" >"$T/oa-manifest.json"
	check "$d inspect oci-archive:F gives the OCI manifest ($O)" [ "$(sha "$T/oa-manifest.json")" = "$O" ]
	check "$d oci-archive:F manifest names config $CFG" \
		[ "$(json "$T/oa-manifest.json" 'j["config"]["digest"]')" = "$CFG" ]
	rm -rf "$T/sk1" "$T/sk2"
	check "$d copy docker-archive:F to dir: works" \
		timeout 60 skopeo copy -q docker-archive:"$F" dir:"$T/sk1"
	if timeout 60 skopeo copy -q --preserve-digests --digestfile "$T/sk2.digest" \
		oci-archive:"$F" oci:"$T/sk2:latest" 2>"$T/err"; then
		check "$d copy oci-archive:F to oci: keeps digest $O" [ "$(cat "$T/sk2.digest")" = "$O" ]
	else
		diag <"$T/err"; nok "$d copy oci-archive:F to oci:"
	fi
}

# ---------------------------------------------------------------- docker
docker_suite() {
	local d="export: docker" got P
	docker_ready "$d load" || return 0
	got=$(timeout 60 docker load -i "$F" 2>&1)
	printf '%s\n' "$got" | diag
	check "$d load -i F loads quinistry:latest" grep -q 'Loaded image: quinistry:latest' <<<"$got" || return
	got=$(docker image inspect -f '{{.Id}}' quinistry:latest 2>/dev/null)
	check "$d loaded image ID is the config digest the server logs" [ "$got" = "$CFG" ]
	[ $STATIC = 1 ] || { skip "$d run loaded image (dynamic binary)"; return; }
	P=$(free_port) || { nok "$d free port"; return; }
	if ! timeout 60 docker run -d --name "$TAG-run" --network host -e PORT="$P" quinistry:latest >/dev/null 2>"$T/err"; then
		diag <"$T/err"; nok "$d run loaded image"; return
	fi
	if wait_http "$P" 15; then
		check "$d loaded image runs and serves digest $D" [ "$(served_digest "$P")" = "$D" ]
	else
		docker logs "$TAG-run" 2>&1 | diag
		nok "$d loaded image runs and answers GET /v2/"
	fi
	container_stop_timed docker "$TAG-run"
	check "$d stop: exit code 0 ($STOP_CODE) in under 2 s ($STOP_MS ms)" [ "$STOP_CODE:$((STOP_MS < 2000))" = 0:1 ]
	docker_cleanup
}

# ---------------------------------------------------------------- podman
podman_suite() {
	local d="export: podman" got P
	if ! have podman; then missing "$d load" "podman missing"; return; fi
	if [ "$(id -u)" != 0 ]; then missing "$d load" "not root; rootless podman is not set up here"; return; fi
	PODMAN_OK=1
	mkdir -p "$T/podman/tmp"
	got=$(timeout 60 $(pm) load -i "$F" 2>&1)
	printf '%s\n' "$got" | diag
	check "$d load -i F works (loads quinistry:latest)" grep -q "Loaded image.*quinistry:latest" <<<"$got" || return
	got=$($(pm) images -q --no-trunc 2>/dev/null | sort -u)
	check "$d loaded image ID is the config digest the server logs" [ "$got" = "$CFG" ] || return
	[ $STATIC = 1 ] || { skip "$d run loaded image (dynamic binary)"; return; }
	P=$(free_port) || { nok "$d free port"; return; }
	if ! timeout 60 $(pm) run -d --name "$TAG-run" $PM_RUN_OPTS -e PORT="$P" "$CFG" >/dev/null 2>"$T/err"; then
		diag <"$T/err"; nok "$d run loaded image"; return
	fi
	if wait_http "$P" 15; then
		check "$d loaded image runs and serves digest $D" [ "$(served_digest "$P")" = "$D" ]
	else
		$(pm) logs "$TAG-run" 2>&1 | diag
		nok "$d loaded image runs and answers GET /v2/"
	fi
	podman_cleanup
}

# ---------------------------------------------------------------- containerd
ctr_suite() {
	local d="export: ctr" got ref man P p
	ctr_ready "$d images import" || return 0
	got=$(timeout 60 ctr -n $NS images import "$F" 2>&1)
	local rc=$?
	printf '%s\n' "$got" | diag
	check "$d images import F works" [ $rc = 0 ] || return
	ref=docker.io/library/quinistry:latest
	man=$(timeout 10 ctr -n $NS images ls 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')
	check "$d imported $ref as the OCI manifest $O" [ "$man" = "$O" ] || {
		timeout 10 ctr -n $NS images ls 2>&1 | diag; return; }
	timeout 10 ctr -n $NS content get "$man" >"$T/ctr-man.json" 2>/dev/null
	check "$d imported manifest names config $CFG" \
		[ "$(json "$T/ctr-man.json" 'j["config"]["digest"]')" = "$CFG" ]
	[ $STATIC = 1 ] || { skip "$d run imported image (dynamic binary)"; return; }
	P=$(free_port) || { nok "$d free port"; return; }
	ctr_run_bg $NS "$ref" "$TAG-run" "$P" "$T/ctr-run.log"
	p=$CTR_RUN_PID
	if wait_http "$P" 15; then
		check "$d imported image runs and serves digest $D" [ "$(served_digest "$P")" = "$D" ]
	else
		diag <"$T/ctr-run.log"
		nok "$d imported image runs and answers GET /v2/"
	fi
	ctr_stop_timed $NS "$TAG-run" "$p"
	check "$d SIGTERM: task exit status 0 ($STOP_CODE)" [ "$STOP_CODE" = 0 ]
	ctr_cleanup
}

# ---------------------------------------------------------------- main
suite_needs export: tar python3 curl
STATIC=1
is_static || STATIC=0
F=$T/export.tar
F2=$T/export-o.tar
"$Q" export >"$F" 2>"$T/err"
rc=$?
check "export: quinistry export > F exits 0" [ $rc = 0 ] || diag <"$T/err"
"$Q" export -o "$F2" 2>"$T/err"
rc=$?
check "export: quinistry export -o F2 exits 0" [ $rc = 0 ] || diag <"$T/err"
check "export: stdout and -o outputs are identical" cmp -s "$F" "$F2"
check "export: output is non-empty and a multiple of 512 bytes" tar_size_ok "$F"
# The README's examples write quinistry.tar and quinistry-oci/ in the
# working tree: git ignores them and make clean removes them.
if have git && git rev-parse --git-dir >/dev/null 2>&1; then
	check "export: git ignores quinistry.tar and quinistry-oci/" \
		bash -c "git check-ignore -q quinistry.tar && git check-ignore -q quinistry-oci/x"
else
	skip "export: git ignores quinistry.tar and quinistry-oci/ (not a git checkout)"
fi
check "export: make clean removes quinistry.tar and quinistry-oci/" \
	bash -c "make -n clean | grep -q 'quinistry.tar' && make -n clean | grep -q 'quinistry-oci'"
if ! server_digests; then
	nok "export: server start-up log gives the digests"
	exit 1
fi
tar_suite
skopeo_suite
setup_daemons
docker_suite
podman_suite
ctr_suite
exit 0
