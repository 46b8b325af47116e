#!/bin/bash
# Quine chain with real registry clients: docker, podman, containerd (ctr)
# and skopeo. Generation 1 is the freshly built binary on 127.0.0.1:A; each
# client pulls it, runs it as a container (host network, PORT=B), pulls from
# that one, runs generation 3 (PORT=C) and pulls once more. Every pull must
# give generation 1's Docker manifest digest, and the pulled layer must hold
# a byte-identical copy of the binary.
#
# Env: QUINISTRY (binary, default ./quinistry), CI=true (missing tool or
# daemon = not ok, else skip), QT_DAEMONS_ENV (file written by
# tests/daemons.sh; if absent and we are root, this suite starts the daemons
# itself and stops them at the end).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/clientlib.sh || exit 1

begin_suite qt-clients
TAG=qt$$ # prefix of every container name we create
CTR_NS="quinistry-test quinistry-test-2 quinistry-test-3"
PM_STORES=(1 2 3)

# The layer blob as served by a generation: digest L and it unpacks to $Q.
served_layer_ok() { # port
	curl -s --max-time 20 -o "$T/served-layer.tar" \
		"http://127.0.0.1:$1/v2/quinistry/blobs/$L" 2>/dev/null &&
		layer_ok "$T/served-layer.tar"
}

# A layer tar is the binary packed as one entry `quinistry` 0755 0/0 mtime 0
# and its digest is L.
layer_ok() { # layer.tar
	local f=$1 got list
	got=$(sha "$f")
	if [ "$got" != "$L" ]; then
		echo "layer digest $got, want $L" | diag
		return 1
	fi
	list=$(tar --numeric-owner --full-time -tvf "$f" 2>&1)
	if ! printf '%s\n' "$list" | grep -Eq '^-rwxr-xr-x 0/0 +[0-9]+ 1970-01-01 00:00:00 quinistry$' ||
		[ "$(printf '%s\n' "$list" | wc -l)" != 1 ]; then
		printf 'unexpected layer listing:\n%s\n' "$list" | diag
		return 1
	fi
	tar -xOf "$f" quinistry >"$T/layer-file" && cmp "$T/layer-file" "$Q" >/dev/null
}

gen1_blob_gets() { # how many 200 GETs of the layer blob gen 1 has logged
	grep -c "GET /v2/quinistry/blobs/$L 2" "$T/gen1.log" 2>/dev/null
}

uid_ok() { # pid -> the process runs as 65534:65534
	local st
	st=$(grep -E '^(Uid|Gid):' "/proc/$1/status" 2>/dev/null)
	printf '%s\n' "$st" | grep -Eq '^Uid:[[:space:]]+65534[[:space:]]+65534[[:space:]]+65534[[:space:]]+65534$' &&
		printf '%s\n' "$st" | grep -Eq '^Gid:[[:space:]]+65534[[:space:]]+65534[[:space:]]+65534[[:space:]]+65534$' ||
		{ printf 'pid %s: %s\n' "$1" "$st" | diag; return 1; }
}

# A docker or podman container stops within 2 s with exit code 0.
stop_ok() { # "docker" or "$(pm N)", container name
	container_stop_timed "$1" "$2"
	echo "${1%% *} stop $2: $STOP_MS ms, exit code $STOP_CODE" | diag
	[ "$STOP_MS" -lt 2000 ] && [ "$STOP_CODE" = 0 ]
}

# A container of IMAGE on the host network serving on PORT: ok when it
# answers GET /v2/, else its log as comments.
run_gen() { # cli run-options name image port gen what
	local cli=$1 opts=$2 name=$3 image=$4 port=$5 gen=$6 what=$7
	# shellcheck disable=SC2086 # cli and opts are lists of words
	if ! timeout 60 $cli run -d --name "$name" $opts -e PORT="$port" "$image" \
		>/dev/null 2>"$T/err"; then
		diag <"$T/err"
		nok "$gen container starts"
		return 1
	fi
	check "$gen ($what, PORT=$port) answers GET /v2/" wait_http "$port" 15 || {
		$cli logs "$name" 2>&1 | diag; return 1; }
}

# ---------------------------------------------------------------- gen 1
start_gen1() {
	start_server "$T/gen1.log"
	A=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/gen1.log" | head -n 1)
	[ -n "$A" ] && log_digests "$T/gen1.log" || {
		diag <"$T/gen1.log"
		return 1
	}
}

# ---------------------------------------------------------------- docker
docker_pull_digest() { # ref -> prints the digest docker pull reports
	timeout 60 docker pull "$1" >"$T/docker-pull.out" 2>&1 ||
		diag <"$T/docker-pull.out"
	sed -n 's/^Digest: *//p' "$T/docker-pull.out" | head -n 1
}

docker_suite() {
	local d="docker:" r1 r2 r3 B C got n0 pid lay
	docker_ready "$d quine chain" || return 0
	r1=127.0.0.1:$A/quinistry:latest
	n0=$(gen1_blob_gets)
	got=$(docker_pull_digest "$r1")
	check "$d pull $r1 reports gen 1 docker manifest digest ($got)" [ "$got" = "$D" ] || return
	check "$d the pull fetched the layer blob from gen 1" [ "$(gen1_blob_gets)" -gt "$n0" ]
	got=$(docker image inspect -f '{{.Id}}' "$r1" 2>/dev/null)
	check "$d image ID is the config digest" [ "$got" = "$CFG" ]
	rm -rf "$T/dsave" && mkdir -p "$T/dsave"
	if timeout 60 docker save -o "$T/docker-save.tar" "$r1" &&
		tar -xf "$T/docker-save.tar" -C "$T/dsave"; then
		lay=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][0])' \
			"$T/dsave/manifest.json" 2>/dev/null)
		check "$d layer from docker save is the binary, byte for byte" layer_ok "$T/dsave/$lay"
	else
		nok "$d docker save"
	fi
	got=$(timeout 30 docker run --rm "$r1" --help 2>/dev/null)
	check "$d docker run --rm IMAGE --help prints the usage" \
		grep -q 'runs as user 65534:65534' <<<"$got"

	# gen 2: container from gen 1's image, serving on B
	B=$(free_port) || { nok "$d free port"; return; }
	run_gen docker "--network host" "$TAG-g2" "$r1" "$B" "$d gen 2" container || return
	pid=$(docker inspect -f '{{.State.Pid}}' "$TAG-g2")
	check "$d gen 2 process runs as uid/gid 65534" uid_ok "$pid"
	check "$d gen 2 logs the same docker manifest digest" \
		grep -q "docker manifest $D" <<<"$(docker logs "$TAG-g2" 2>&1)"
	check "$d gen 2 serves the tag with digest $D" [ "$(served_digest "$B")" = "$D" ]
	check "$d gen 2 serves the same layer (binary byte for byte)" served_layer_ok "$B"
	r2=127.0.0.1:$B/quinistry:latest
	got=$(docker_pull_digest "$r2")
	check "$d pull $r2 (gen 2) reports the same digest" [ "$got" = "$D" ] || return
	check "$d gen 2 logged docker's manifest request" \
		grep -Eq "(GET|HEAD) /v2/quinistry/manifests/(latest|$D) 200" <<<"$(docker logs "$TAG-g2" 2>&1)"
	if have skopeo; then
		got=$(timeout 60 skopeo inspect --tls-verify=false -f '{{.Digest}}' "docker://$r2" 2>"$T/err") || diag <"$T/err"
		check "skopeo: inspect gen 2 (docker container) reports the same digest" [ "$got" = "$D" ]
	fi

	# gen 3: container from the image pulled from gen 2, serving on C
	C=$(free_port) || { nok "$d free port"; return; }
	run_gen docker "--network host" "$TAG-g3" "$r2" "$C" "$d gen 3" "container from gen 2's image" || return
	r3=127.0.0.1:$C/quinistry:latest
	got=$(docker_pull_digest "$r3")
	check "$d pull $r3 (gen 3) reports the same digest" [ "$got" = "$D" ]
	check "$d gen 3 serves the same layer (binary byte for byte)" served_layer_ok "$C"
	check "$d docker stop ends gen 3 in under 2 s with exit code 0" stop_ok docker "$TAG-g3"
	check "$d docker stop ends gen 2 in under 2 s with exit code 0" stop_ok docker "$TAG-g2"
	docker_cleanup
}

# ---------------------------------------------------------------- podman
podman_pull_digest() { # store ref
	mkdir -p "$T/podman$1/tmp"
	timeout 60 $(pm "$1") pull -q --tls-verify=false "$2" >"$T/podman-pull.out" 2>&1 ||
		{ diag <"$T/podman-pull.out"; return 1; }
	timeout 30 $(pm "$1") image inspect -f '{{.Digest}}' "$2" 2>/dev/null
}

podman_suite() {
	local d="podman:" r1 r2 r3 B C got n0 pid
	if ! have podman; then missing "$d quine chain" "podman missing"; return; fi
	if [ "$(id -u)" != 0 ]; then
		missing "$d quine chain" "not root; rootless podman is not set up here"; return
	fi
	if ! have runc; then missing "$d quine chain" "runc missing"; return; fi
	PODMAN_OK=1
	# Fresh private stores: store 1 pulls from gen 1 and runs gen 2; store 2
	# pulls from gen 2 and runs gen 3; store 3 pulls from gen 3. So every
	# pull really fetches.
	r1=127.0.0.1:$A/quinistry:latest
	n0=$(gen1_blob_gets)
	got=$(podman_pull_digest 1 "$r1")
	check "$d pull $r1 reports gen 1 docker manifest digest ($got)" [ "$got" = "$D" ] || return
	check "$d the pull fetched the layer blob from gen 1" [ "$(gen1_blob_gets)" -gt "$n0" ]
	got=$($(pm 1) image inspect -f '{{.Id}}' "$r1" 2>/dev/null)
	check "$d image ID is the config digest" [ "sha256:$got" = "$CFG" ]
	if timeout 60 $(pm 1) create --name "$TAG-cp" "$r1" >/dev/null 2>"$T/err" &&
		timeout 60 $(pm 1) cp "$TAG-cp:/quinistry" "$T/podman-cp" 2>>"$T/err"; then
		check "$d /quinistry in the image is the binary, byte for byte" cmp "$T/podman-cp" "$Q"
	else
		diag <"$T/err"
		nok "$d podman create + cp /quinistry"
	fi
	$(pm 1) rm -f "$TAG-cp" >/dev/null 2>&1
	got=$(timeout 30 $(pm 1) run --rm $PM_RUN_OPTS "$r1" --help 2>/dev/null)
	check "$d podman run --rm IMAGE --help prints the usage" \
		grep -q 'runs as user 65534:65534' <<<"$got"

	B=$(free_port) || { nok "$d free port"; return; }
	run_gen "$(pm 1)" "$PM_RUN_OPTS" "$TAG-g2" "$r1" "$B" "$d gen 2" container || return
	pid=$($(pm 1) inspect -f '{{.State.Pid}}' "$TAG-g2")
	check "$d gen 2 process runs as uid/gid 65534" uid_ok "$pid"
	check "$d gen 2 logs the same docker manifest digest" \
		grep -q "docker manifest $D" <<<"$($(pm 1) logs "$TAG-g2" 2>&1)"
	r2=127.0.0.1:$B/quinistry:latest
	got=$(podman_pull_digest 2 "$r2")
	check "$d pull $r2 (gen 2, fresh store) reports the same digest" [ "$got" = "$D" ] || return
	check "$d gen 2 served the layer blob to that pull" \
		grep -q "GET /v2/quinistry/blobs/$L 200" <<<"$($(pm 1) logs "$TAG-g2" 2>&1)"

	C=$(free_port) || { nok "$d free port"; return; }
	run_gen "$(pm 2)" "$PM_RUN_OPTS" "$TAG-g3" "$r2" "$C" "$d gen 3" "container from gen 2's image" || return
	r3=127.0.0.1:$C/quinistry:latest
	got=$(podman_pull_digest 3 "$r3")
	check "$d pull $r3 (gen 3, fresh store) reports the same digest" [ "$got" = "$D" ]
	got=$($(pm 3) image inspect -f '{{.Id}}' "$r3" 2>/dev/null)
	check "$d image ID from gen 3 is still the config digest" [ "sha256:$got" = "$CFG" ]
	check "$d podman stop ends gen 3 in under 2 s with exit code 0" stop_ok "$(pm 2)" "$TAG-g3"
	check "$d podman stop ends gen 2 in under 2 s with exit code 0" stop_ok "$(pm 1)" "$TAG-g2"
	podman_cleanup
}

# ---------------------------------------------------------------- containerd
ctr_pull_digest() { # namespace ref
	timeout 60 ctr -n "$1" images pull --plain-http "$2" >"$T/ctr-pull.out" 2>&1 ||
		{ diag <"$T/ctr-pull.out"; return 1; }
	timeout 30 ctr -n "$1" images ls 2>/dev/null | awk -v r="$2" '$1 == r { print $3 }'
}

ctr_task_pid() { # namespace name
	timeout 10 ctr -n "$1" tasks ls 2>/dev/null | awk -v n="$2" '$1 == n { print $2 }'
}

ctr_stop_ok() { # namespace name ctr-run-pid
	ctr_stop_timed "$1" "$2" "$3"
	echo "ctr tasks kill $2: $STOP_MS ms, exit status $STOP_CODE" | diag
	[ "$STOP_MS" -lt 2000 ] && [ "$STOP_CODE" = 0 ]
}

ctr_suite() {
	local d="containerd:" r1 r2 r3 B C got n0 pid p2 p3 ns1=quinistry-test ns2=quinistry-test-2 ns3=quinistry-test-3
	ctr_ready "$d quine chain" || return 0
	# content_sharing_policy = "isolated": each namespace fetches anew.
	r1=127.0.0.1:$A/quinistry:latest
	n0=$(gen1_blob_gets)
	got=$(ctr_pull_digest $ns1 "$r1")
	check "$d ctr pull $r1 reports gen 1 docker manifest digest ($got)" [ "$got" = "$D" ] || return
	check "$d the pull fetched the layer blob from gen 1" [ "$(gen1_blob_gets)" -gt "$n0" ]
	if timeout 30 ctr -n $ns1 content get "$L" >"$T/ctr-layer.tar" 2>"$T/err"; then
		check "$d stored layer is the binary, byte for byte" layer_ok "$T/ctr-layer.tar"
	else
		diag <"$T/err"
		nok "$d ctr content get $L"
	fi

	B=$(free_port) || { nok "$d free port"; return; }
	ctr_run_bg $ns1 "$r1" "$TAG-g2" "$B" "$T/ctr-g2.log"
	p2=$CTR_RUN_PID
	check "$d gen 2 (task, PORT=$B) answers GET /v2/" wait_http "$B" 15 || { diag <"$T/ctr-g2.log"; return; }
	pid=$(ctr_task_pid $ns1 "$TAG-g2")
	check "$d gen 2 process runs as uid/gid 65534" uid_ok "$pid"
	check "$d gen 2 logs the same docker manifest digest" grep -q "docker manifest $D" "$T/ctr-g2.log"
	r2=127.0.0.1:$B/quinistry:latest
	got=$(ctr_pull_digest $ns2 "$r2")
	check "$d ctr pull $r2 (gen 2, other namespace) reports the same digest" [ "$got" = "$D" ] || return
	check "$d gen 2 served the layer blob to that pull" grep -q "GET /v2/quinistry/blobs/$L 20[06]" "$T/ctr-g2.log"

	C=$(free_port) || { nok "$d free port"; return; }
	ctr_run_bg $ns2 "$r2" "$TAG-g3" "$C" "$T/ctr-g3.log"
	p3=$CTR_RUN_PID
	check "$d gen 3 (task from gen 2's image, PORT=$C) answers GET /v2/" wait_http "$C" 15 || { diag <"$T/ctr-g3.log"; return; }
	r3=127.0.0.1:$C/quinistry:latest
	got=$(ctr_pull_digest $ns3 "$r3")
	check "$d ctr pull $r3 (gen 3, other namespace) reports the same digest" [ "$got" = "$D" ]
	check "$d SIGTERM ends gen 3 in under 2 s with exit status 0" ctr_stop_ok $ns2 "$TAG-g3" "$p3"
	check "$d SIGTERM ends gen 2 in under 2 s with exit status 0" ctr_stop_ok $ns1 "$TAG-g2" "$p2"
	ctr_cleanup
}

# ---------------------------------------------------------------- skopeo
# skopeo_copy REF DIR: REF (over plain HTTP) into the OCI layout DIR, its
# manifest digest in DIR.digest; else skopeo's messages as comments.
skopeo_copy() {
	rm -rf "$2"
	timeout 60 skopeo copy -q --preserve-digests --src-tls-verify=false \
		--digestfile "$2.digest" "$1" "oci:$2:latest" >"$T/err" 2>&1 ||
		{ diag <"$T/err"; return 1; }
}

skopeo_suite() {
	local d="skopeo:" r1 got idx cfg
	if ! have skopeo; then missing "$d inspect/copy" "skopeo missing"; return; fi
	r1=127.0.0.1:$A/quinistry
	got=$(timeout 60 skopeo inspect --tls-verify=false -f '{{.Digest}}' "docker://$r1:latest" 2>"$T/err") || diag <"$T/err"
	check "$d inspect docker://$r1:latest reports gen 1 docker manifest digest" [ "$got" = "$D" ]
	if skopeo_copy "docker://$r1:latest" "$T/oci1"; then
		check "$d copy to oci:DIR:latest keeps the digest" [ "$(cat "$T/oci1.digest")" = "$D" ]
		idx=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
			"$T/oci1/index.json" 2>/dev/null)
		check "$d oci layout index.json points at the same manifest" [ "$idx" = "$D" ]
		check "$d copied layer is the binary packed as one tar entry, byte for byte" \
			layer_ok "$T/oci1/blobs/sha256/${L#sha256:}"
		check "$d copied config has the config digest" [ -f "$T/oci1/blobs/sha256/${CFG#sha256:}" ]
	else
		nok "$d copy docker://$r1:latest to oci:DIR:latest"
	fi
	# the OCI manifest, by digest
	if skopeo_copy "docker://$r1@$O" "$T/oci2"; then
		check "$d copy of the OCI manifest by digest keeps digest $O" [ "$(cat "$T/oci2.digest")" = "$O" ]
		cfg=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["mediaType"], m["config"]["digest"], m["layers"][0]["digest"])' \
			"$T/oci2/blobs/sha256/${O#sha256:}" 2>/dev/null)
		check "$d OCI manifest names the same config and layer" \
			[ "$cfg" = "application/vnd.oci.image.manifest.v1+json $CFG $L" ]
	else
		nok "$d copy docker://$r1@$O to oci:DIR:latest"
	fi
}

# ---------------------------------------------------------------- main
suite_needs clients: curl tar python3
STATIC=1
if is_static; then
	ok "clients: $Q is statically linked (runs in a scratch container)"
else
	STATIC=0
	file -L "$Q" 2>/dev/null | diag
	case ${Q##*/} in
	quinistry) nok "clients: $Q is statically linked (it is dynamic: cannot run in a scratch container)" ;;
	*) skip "clients: $Q is dynamically linked (e.g. a sanitizer build); container runs need the static binary" ;;
	esac
fi
if ! start_gen1; then
	nok "clients: gen 1 ($Q -l 127.0.0.1:0) starts and logs its digests"
	exit 1
fi
ok "clients: gen 1 listening on 127.0.0.1:$A, docker manifest $D"
check "clients: gen 1 serves the tag with Docker-Content-Digest $D" [ "$(served_digest "$A")" = "$D" ]
check "clients: gen 1 serves layer $L: the binary as one tar entry, byte for byte" served_layer_ok "$A"

setup_daemons
skopeo_suite
if [ $STATIC = 1 ]; then
	docker_suite
	podman_suite
	ctr_suite
else
	skip "clients: docker, podman and containerd chains (dynamic binary)"
fi
exit 0
