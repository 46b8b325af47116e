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

Q=${QUINISTRY:-./quinistry}
case $Q in /*) ;; *) Q=$PWD/${Q#./} ;; esac
CI=${CI:-}
export TZ=UTC LC_ALL=C

T=$(mktemp -d /tmp/qt-export.XXXXXX) || exit 1
TAG=qtx$$
NS=quinistry-export
STARTED_DAEMONS=0
SRVPID=
BG_PIDS=()
USED_PORTS=" "
DOCKER_OK=0 PODMAN_OK=0 CTR_OK=0

ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; }
skp() { echo "skip - $*"; }
diag() { sed 's/^/# /' >&2; }
check() {
	local d=$1; shift
	if "$@"; then ok "$d"; else nok "$d"; return 1; fi
}
missing() {
	if [ "$CI" = true ]; then nok "$1 ($2)"; else skp "$1 ($2)"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }
# Why a private daemon is not available.
daemon_reason() { # binary
	if ! have "$1"; then echo "$1 missing"
	elif [ "$(id -u)" != 0 ]; then echo "not root, cannot start $1"
	else echo "$1 did not start; see tests/daemons.sh messages"
	fi
}
sha() { sha256sum "$1" | awk '{print "sha256:" $1}'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

free_port() {
	local i p lo=32768 hi=60999 base=20000 span=12000
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	# Stay below the ephemeral range: a busy machine (load tests) may have
	# any ephemeral port bound by an outgoing connection.
	if [ "${lo:-0}" -ge 12000 ] 2>/dev/null; then
		base=10000 span=$((lo - 10000))
	fi
	for i in $(seq 1 200); do
		p=$((base + (RANDOM * 32768 + RANDOM) % span))
		case $USED_PORTS in *" $p "*) continue ;; esac
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		if have ss && [ -n "$(ss -Hatn "( sport = :$p )" 2>/dev/null)" ]; then
			continue
		fi
		USED_PORTS="$USED_PORTS$p "
		echo "$p"
		return 0
	done
	return 1
}
wait_http() {
	local i=0 n=$((${2:-15} * 10))
	while [ $i -lt $n ]; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null)" = 200 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
served_digest() {
	curl -s -I --max-time 5 \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:$1/v2/quinistry/manifests/latest" 2>/dev/null |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}
is_static() {
	if have readelf; then
		readelf -lW "$Q" 2>/dev/null | grep -q 'Elf file type' &&
			! readelf -lW "$Q" 2>/dev/null | grep -q 'INTERP'
	elif have file; then
		file -L "$Q" | grep -Eq 'statically linked|static-pie linked'
	else
		return 0
	fi
}
umount_under() {
	[ -r /proc/self/mountinfo ] || return 0
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
}
json() { # file python-expression-on-j [args for sys.argv[3:]]
	local f=$1 e=$2
	shift 2
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$f" "$e" "$@" 2>/dev/null
}
blob_ok() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }
tar_size_ok() { [ -s "$1" ] && [ $(($(stat -c %s "$1") % 512)) = 0 ]; }

pm() {
	echo "podman --root $T/podman/root --runroot $T/podman/run --tmpdir $T/podman/tmp" \
		"--cgroup-manager cgroupfs --events-backend file --runtime runc"
}
PM_RUN_OPTS="--network host --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"

docker_cleanup() {
	[ $DOCKER_OK = 1 ] || return 0
	local c
	c=$(docker ps -aq --filter "name=^$TAG-" 2>/dev/null)
	[ -n "$c" ] && docker rm -f $c >/dev/null 2>&1
	[ -n "${CFG:-}" ] && docker rmi -f "$CFG" >/dev/null 2>&1
	return 0
}
podman_cleanup() {
	[ $PODMAN_OK = 1 ] && [ -d "$T/podman" ] || return 0
	timeout 60 $(pm) rm -af -t 0 >/dev/null 2>&1
	timeout 60 $(pm) rmi -af >/dev/null 2>&1
	return 0
}
ctr_cleanup() {
	[ $CTR_OK = 1 ] || return 0
	local t c i
	for t in $(timeout 10 ctr -n $NS tasks ls -q 2>/dev/null); do
		timeout 10 ctr -n $NS tasks kill -s SIGKILL "$t" >/dev/null 2>&1
		timeout 10 ctr -n $NS tasks rm -f "$t" >/dev/null 2>&1
	done
	for c in $(timeout 10 ctr -n $NS containers ls -q 2>/dev/null); do
		timeout 10 ctr -n $NS containers rm "$c" >/dev/null 2>&1
	done
	i=$(timeout 10 ctr -n $NS images ls -q 2>/dev/null)
	[ -n "$i" ] && timeout 30 ctr -n $NS images rm --sync $i >/dev/null 2>&1
	timeout 10 ctr namespaces rm $NS >/dev/null 2>&1
	return 0
}
cleanup() {
	local p
	[ -n "$SRVPID" ] && kill "$SRVPID" 2>/dev/null
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	docker_cleanup
	podman_cleanup
	ctr_cleanup
	if [ $STARTED_DAEMONS = 1 ]; then
		QT_DAEMONS_QUIET=1 tests/daemons.sh stop
	fi
	umount_under "$T"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_daemons() {
	local envf=${QT_DAEMONS_ENV:-/tmp/qt-daemons/env}
	if [ -f "$envf" ]; then
		. "$envf"
		tests/daemons.sh status && return 0
	fi
	if [ "$(id -u)" = 0 ] && have dockerd && have containerd && have runc; then
		if QT_DAEMONS_QUIET=1 QT_DAEMONS_ENV="$T/daemons.env" \
			QT_DAEMONS_DIR="$T/d" tests/daemons.sh start; then
			STARTED_DAEMONS=1
			QT_DAEMONS_DIR="$T/d"
			export QT_DAEMONS_DIR
			. "$T/daemons.env"
			return 0
		fi
	fi
	unset DOCKER_HOST CONTAINERD_ADDRESS
	return 1
}

# The digests the server logs at start-up.
server_digests() {
	"$Q" -q -l 127.0.0.1:0 >/dev/null 2>"$T/server.log" &
	SRVPID=$!
	local i=0
	while [ $i -lt 100 ] && ! grep -q 'listening on' "$T/server.log" 2>/dev/null; do
		kill -0 "$SRVPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	kill "$SRVPID" 2>/dev/null
	wait "$SRVPID" 2>/dev/null
	SRVPID=
	D=$(sed -n 's/^ *docker manifest *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$T/server.log" | head -n 1)
	O=$(sed -n 's/^ *oci manifest *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$T/server.log" | head -n 1)
	CFG=$(sed -n 's/^ *config *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$T/server.log" | head -n 1)
	L=$(sed -n 's/^ *layer *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$T/server.log" | head -n 1)
	[ -n "$D" ] && [ -n "$O" ] && [ -n "$CFG" ] && [ -n "$L" ] || { diag <"$T/server.log"; return 1; }
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
	local d="export: docker" got P t0 t1 code
	if ! have docker; then missing "$d load" "docker missing"; return; fi
	if [ -z "${DOCKER_HOST:-}" ] || ! timeout 20 docker version >/dev/null 2>&1; then
		missing "$d load" "$(daemon_reason dockerd)"; return
	fi
	DOCKER_OK=1
	docker_cleanup
	got=$(timeout 60 docker load -i "$F" 2>&1)
	printf '%s\n' "$got" | diag
	check "$d load -i F loads quinistry:latest" grep -q 'Loaded image: quinistry:latest' <<<"$got" || return
	got=$(docker image inspect -f '{{.Id}}' quinistry:latest 2>/dev/null)
	check "$d loaded image ID is the config digest the server logs" [ "$got" = "$CFG" ]
	[ $STATIC = 1 ] || { skp "$d run loaded image (dynamic binary)"; return; }
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
	t0=$(now_ms)
	timeout 30 docker stop "$TAG-run" >/dev/null 2>&1
	t1=$(now_ms)
	code=$(docker inspect -f '{{.State.ExitCode}}' "$TAG-run" 2>/dev/null)
	check "$d stop: exit code 0 ($code) in under 2 s ($((t1 - t0)) ms)" [ "$code:$(((t1 - t0) < 2000))" = 0:1 ]
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
	[ $STATIC = 1 ] || { skp "$d run loaded image (dynamic binary)"; return; }
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
	local d="export: ctr" got ref man P p code i
	if ! have ctr; then missing "$d images import" "ctr missing"; return; fi
	if [ -z "${CONTAINERD_ADDRESS:-}" ] || ! timeout 20 ctr version >/dev/null 2>&1; then
		missing "$d images import" "$(daemon_reason containerd)"; return
	fi
	export CONTAINERD_ADDRESS
	CTR_OK=1
	ctr_cleanup
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
	[ $STATIC = 1 ] || { skp "$d run imported image (dynamic binary)"; return; }
	P=$(free_port) || { nok "$d free port"; return; }
	ctr -n $NS run --net-host --env PORT="$P" "$ref" "$TAG-run" </dev/null >"$T/ctr-run.log" 2>&1 &
	p=$!
	BG_PIDS+=("$p")
	if wait_http "$P" 15; then
		check "$d imported image runs and serves digest $D" [ "$(served_digest "$P")" = "$D" ]
	else
		diag <"$T/ctr-run.log"
		nok "$d imported image runs and answers GET /v2/"
	fi
	timeout 10 ctr -n $NS tasks kill -s SIGTERM "$TAG-run" >/dev/null 2>&1
	i=0
	while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	if kill -0 "$p" 2>/dev/null; then code=still-running; else wait "$p"; code=$?; fi
	check "$d SIGTERM: task exit status 0 ($code)" [ "$code" = 0 ]
	ctr_cleanup
}

# ---------------------------------------------------------------- main
if [ ! -x "$Q" ]; then
	nok "export: $Q exists and is executable"
	exit 1
fi
for t in tar python3 curl; do
	have $t || { missing "export: suite needs $t" "$t missing"; exit 0; }
done
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
