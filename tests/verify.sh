#!/bin/bash
# Verify what you pulled (issue 12, item 4): the source a generation carries
# rebuilds, with `make` in an empty directory, the very binary that
# generation serves, and that rebuild serves the same digests again.
#
# Two paths, each through generations 1 -> 2 -> 3; gen 1 is $Q on
# 127.0.0.1:A.
#  - curl + referrers: the OCI manifest by tag, its referrers answer (also
#    filtered by artifactType), the source artifact's manifest (schema
#    checks), its blobs; the source tar is unpacked and built, and the
#    result compared with the binary in the image layer blob. The rebuilt
#    binary, run as a plain process, is the next generation.
#  - docker: pull, `docker run --rm IMAGE source`, build, compare with
#    /quinistry of the pulled image, run the rebuild; the pulled image runs
#    as a container (host network, PORT=B), the next generation.
# Every generation and every rebuild must log and serve gen 1's digests
# (manifests, config, layer, source artifact, referrers answer).
#
# The byte-identical rebuild needs the toolchain that built $Q (printed as
# "# toolchain: ..."); make runs with this shell's environment, the one
# `make test` built ./quinistry with.
#
# Env: QUINISTRY (binary, default ./quinistry), CI=true (missing tool or
# daemon = not ok, else skip), QT_DAEMONS_ENV (see tests/daemons.sh; if
# absent and we are root, this suite starts private daemons).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/clientlib.sh || exit 1

begin_suite qt-verify
TAG=qtv$$ # prefix of every container name we create
CTR_NS=
PM_STORES=()

MT_OCI=application/vnd.oci.image.manifest.v1+json
AT=application/vnd.quinistry.source.v1
SOURCES="Makefile quinistry.c sha256.c sha256.h"

# The JSON checks, one per subcommand; a failed one says why on stderr and
# exits 1.
# index FILE: an OCI index; prints "digest artifactType" per descriptor.
# artifact FILE SUBJECT-DIGEST SUBJECT-SIZE: the source artifact's
#   manifest (image-spec 1.1 "Guidelines for Artifact Usage"); prints the
#   config digest, the layer digest and size.
# layer FILE: an OCI image manifest; prints its one layer's digest.
PY='
import hashlib, json, sys
cmd, f = sys.argv[1], sys.argv[2]
j = json.load(open(f))
def need(cond, what):
    if not cond:
        sys.exit("%s: %s in %s" % (f, what, json.dumps(j)))
def desc(d, what):
    need(isinstance(d, dict) and isinstance(d.get("mediaType"), str) and
         isinstance(d.get("size"), int) and
         str(d.get("digest", "")).startswith("sha256:"), what + " descriptor")
need(j.get("schemaVersion") == 2, "schemaVersion 2")
if cmd == "index":
    need(j.get("mediaType") == "application/vnd.oci.image.index.v1+json",
         "index mediaType")
    need(isinstance(j.get("manifests"), list), "manifests list")
    for d in j["manifests"]:
        desc(d, "listed")
        print(d["digest"], d.get("artifactType", "-"))
elif cmd == "artifact":
    need(j.get("mediaType") == "application/vnd.oci.image.manifest.v1+json",
         "manifest mediaType")
    need(j.get("artifactType") == "application/vnd.quinistry.source.v1",
         "artifactType")
    c = j.get("config")
    desc(c, "config")
    empty = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    need(c["mediaType"] == "application/vnd.oci.empty.v1+json" and
         c["size"] == 2 and c["digest"] == empty, "the empty config")
    ls = j.get("layers")
    need(isinstance(ls, list) and len(ls) == 1, "one layer")
    desc(ls[0], "layer")
    need(ls[0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar",
         "layer mediaType (an uncompressed tar)")
    s = j.get("subject")
    desc(s, "subject")
    need(s["mediaType"] == "application/vnd.oci.image.manifest.v1+json" and
         s["digest"] == sys.argv[3] and s["size"] == int(sys.argv[4]),
         "subject = the OCI image manifest " + sys.argv[3])
    print(c["digest"], ls[0]["digest"], ls[0]["size"])
elif cmd == "layer":
    need(len(j.get("layers", [])) == 1, "one layer")
    print(j["layers"][0]["digest"])
'
py() { python3 -c "$PY" "$@"; }
SCHEMA="mediaType, artifactType, the empty config, one tar layer,"
SCHEMA="$SCHEMA subject = the OCI manifest"

# get URL FILE [CURL-ARG...]: the body in FILE, the response head in FILE.h
get() {
	local u=$1 f=$2
	shift 2
	curl -sSf --max-time 20 -D "$f.h" -o "$f" "$@" "$u"
}
# header FILE.h NAME: that header's value (none: empty)
header() { tr -d '\r' <"$1" | sed -n "s/^$2: *//Ip" | tail -n 1; }
size() { stat -c %s "$1"; }

# What the registry on PORT serves, one line per object: both manifests by
# tag, the referrers answer for the OCI one and what it lists. Two
# registries serve the same when these lines are equal.
served_set() { # port
	local u=http://127.0.0.1:$1/v2/quinistry f=$T/set.$1 o
	echo "docker manifest $(served_digest "$1")"
	get "$u/manifests/latest" "$f.oci" -H "Accept: $MT_OCI" || return 1
	o=$(header "$f.oci.h" Docker-Content-Digest)
	echo "oci manifest $o"
	get "$u/referrers/$o" "$f.ref" || return 1
	echo "referrers $(header "$f.ref.h" Docker-Content-Digest)"
	py index "$f.ref" | sed 's/^/lists /'
}

# The digest lines of a start-up banner (stdin).
banner_lines() {
	grep -E '^  (docker manifest|oci manifest|config|layer|source) +sha256:'
}

# The generation or rebuild on PORT, whose banner is in LOG, logs and
# serves what gen 1 does.
same_as_gen1() { # label port log
	check "$1 logs gen 1's digests (manifests, config, layer, source)" \
		diff "$T/banner1" <(banner_lines <"$3")
	check "$1 serves what gen 1 serves (manifests, referrers, artifact)" \
		diff "$T/set1" <(served_set "$2")
}

# Start BIN (a rebuild) on a port of its choosing; its banner in LOG;
# sets PORT. Then it must match gen 1.
serve_rebuild() { # label binary log
	if ! start "$3" "$2" -l 127.0.0.1:0; then
		diag <"$3"
		nok "$1 starts and listens"
		return 1
	fi
	PORT=${ADDR##*:}
	same_as_gen1 "$1 (127.0.0.1:$PORT)" "$PORT" "$3"
}

# Every entry of a tar listing (tar -tv --full-time, in UTC) is a regular
# file 0644 0/0 with mtime 0, to the second.
meta_ok() { # listing
	printf '%s\n' "$1" | grep -Ev \
		'^-rw-r--r-- 0/0 +[0-9]+ 1970-01-01 00:00:00 [^ ]+$' >&2 && return 1
	return 0
}

# A source tar lists exactly the build inputs, with fixed metadata; it is
# unpacked into DIR, a new directory.
source_ok() { # label tar dir
	local names list
	names=$(tar -tf "$2" 2>&1 | sort | tr '\n' ' ')
	check "$1 source tar lists exactly $SOURCES" \
		[ "$names" = "$SOURCES " ] || echo "tar t: $names" | diag
	list=$(TZ=UTC tar --numeric-owner --full-time -tvf "$2" 2>&1)
	check "$1 source tar entries are 0644, 0/0, mtime 0" meta_ok "$list"
	mkdir "$3" && tar -xf "$2" -C "$3"
}

# The unpacked source is this checkout's build inputs, byte for byte.
repo_same() { # dir
	local f
	for f in $SOURCES; do cmp "$1/$f" "$f" || return 1; done
}

# make in the unpacked source DIR; the result must be BIN (WHAT) byte for
# byte.
rebuild_ok() { # label dir binary what
	if ! make -C "$2" >"$2.make" 2>&1 || [ ! -f "$2/quinistry" ]; then
		diag <"$2.make"
		nok "$1 make in the unpacked source builds quinistry"
		return 1
	fi
	check "$1 make in the unpacked source rebuilds $4, byte for byte" \
		cmp "$2/quinistry" "$3" || {
		echo "$4: $("$3" --version 2>&1); toolchain: $TOOLCHAIN" | diag
		return 1
	}
}

toolchain() {
	local musl
	musl=$(dpkg-query -W -f '${Version}' musl-dev 2>/dev/null ||
		dpkg-query -W -f '${Version}' musl-tools 2>/dev/null) || musl=unknown
	echo "musl-gcc: $(musl-gcc --version 2>&1 | head -n 1);" \
		"binutils: $(ld --version 2>&1 | head -n 1); musl: $musl"
}

# ---------------------------------------------------------------- gen 1
start_gen1() {
	start_server "$T/gen1.log" &&
		A=${ADDR##*:} &&
		log_digests "$T/gen1.log" &&
		S=$(sed -n 's/^ *source *\(sha256:[0-9a-f]\{64\}\).*/\1/p' "$T/gen1.log") &&
		[ -n "$S" ] || { diag <"$T/gen1.log"; return 1; }
	banner_lines <"$T/gen1.log" >"$T/banner1"
}

gen1_set_ok() {
	served_set "$A" >"$T/set1" || return 1
	grep -qx "docker manifest $D" "$T/set1" &&
		grep -qx "oci manifest $O" "$T/set1" &&
		grep -qx "lists $S $AT" "$T/set1" &&
		[ "$(wc -l <"$T/set1")" = 4 ] || { diag <"$T/set1"; return 1; }
}

# ---------------------------------------------------------------- curl
# The referrers answer for the OCI manifest, with an artifactType filter
# (its own type: the artifact; another: none), both saying the filter
# was applied.
filters_ok() { # label url-of-referrers
	local w=$T/filter got='' other=application/vnd.example.other
	rm -f "$w" "$w.h"
	get "$2?artifactType=$AT" "$w" && got=$(py index "$w")
	check "$1 referrers ?artifactType=$AT lists the artifact, with OCI-Filters-Applied" \
		[ "$got/$(header "$w.h" OCI-Filters-Applied)" = "$S $AT/artifactType" ]
	got=
	rm -f "$w" "$w.h"
	get "$2?artifactType=$other" "$w" && got=$(py index "$w" && echo none)
	check "$1 referrers ?artifactType=$other is empty, with OCI-Filters-Applied" \
		[ "$got/$(header "$w.h" OCI-Filters-Applied)" = none/artifactType ]
}

# Generation N serves on PORT and runs BIN: check what it serves, rebuild
# from the artifact's layer, compare with the image layer's binary. Unless
# N is 3, run the rebuild as generation N+1 (sets PORT and NEXT_BIN).
curl_gen() { # n port binary
	local d="curl gen $1:" u=http://127.0.0.1:$2/v2/quinistry w=$T/curl$1
	local od got cfg lay lsize il
	mkdir -p "$w"
	get "$u/manifests/latest" "$w/oci" -H "Accept: $MT_OCI" || {
		nok "$d GET the OCI manifest by tag"; return 1; }
	od=$(sha "$w/oci")
	check "$d OCI manifest by tag is $O (body and Docker-Content-Digest)" \
		[ "$od $(header "$w/oci.h" Docker-Content-Digest)" = "$O $O" ]

	get "$u/referrers/$od" "$w/ref" && got=$(py index "$w/ref")
	check "$d referrers of $od lists one $AT: the artifact $S" \
		[ "$got" = "$S $AT" ]
	check "$d unfiltered referrers answer has no OCI-Filters-Applied" \
		[ -z "$(header "$w/ref.h" OCI-Filters-Applied)" ]
	filters_ok "$d" "$u/referrers/$od"

	get "$u/manifests/$S" "$w/art" -H "Accept: $MT_OCI" || {
		nok "$d GET the artifact manifest $S"; return 1; }
	check "$d artifact manifest by digest: its sha256, Content-Type $MT_OCI" \
		[ "$(sha "$w/art") $(header "$w/art.h" Content-Type)" = "$S $MT_OCI" ]
	got=$(py artifact "$w/art" "$od" "$(size "$w/oci")")
	check_status $? "$d artifact manifest: $SCHEMA" || return 1
	read -r cfg lay lsize <<<"$got"
	get "$u/blobs/$cfg" "$w/cfg"
	check "$d the config blob $cfg is {}" [ "$(cat "$w/cfg")" = "{}" ]
	get "$u/blobs/$lay" "$w/src.tar" || { nok "$d GET the source blob"; return 1; }
	check "$d source blob: sha256 $lay, $lsize bytes, as its descriptor says" \
		[ "$(sha "$w/src.tar") $(size "$w/src.tar")" = "$lay $lsize" ]
	"$3" source >"$w/self.tar" 2>"$T/err" || diag <"$T/err"
	check "$d the server's binary: \`quinistry source\` is that blob" \
		cmp "$w/self.tar" "$w/src.tar"
	source_ok "$d" "$w/src.tar" "$w/src" || { nok "$d unpack the source"; return 1; }
	[ "$1" = 1 ] && check "$d the source is this checkout's $SOURCES" repo_same "$w/src"

	il=$(py layer "$w/oci") && get "$u/blobs/$il" "$w/layer.tar"
	check "$d the image layer blob $il: its sha256" \
		[ "$(sha "$w/layer.tar")" = "$il" ]
	tar -xOf "$w/layer.tar" quinistry >"$w/image-bin" 2>"$T/err" || diag <"$T/err"
	chmod +x "$w/image-bin" 2>/dev/null
	check "$d the image layer holds the server's binary" cmp "$w/image-bin" "$3"
	rebuild_ok "$d" "$w/src" "$w/image-bin" "the image layer's binary" ||
		return 1
	[ "$1" = 3 ] && return 0
	NEXT_BIN=$w/src/quinistry
	serve_rebuild "curl gen $(($1 + 1)) (the rebuild, a process)" \
		"$NEXT_BIN" "$w/next.log"
}

curl_path() {
	local n port=$A bin=$Q
	for n in 1 2 3; do
		curl_gen "$n" "$port" "$bin" || return
		port=$PORT bin=$NEXT_BIN
	done
}

# ---------------------------------------------------------------- docker
docker_pull_digest() { # ref -> prints the digest docker pull reports
	timeout 60 docker pull "$1" >"$T/pull.out" 2>&1 || diag <"$T/pull.out"
	sed -n 's/^Digest: *//p' "$T/pull.out" | head -n 1
}

# /quinistry of IMAGE into FILE (docker create, docker cp).
image_binary() { # image file name
	timeout 60 docker create --name "$3" "$1" >/dev/null 2>"$T/err" &&
		timeout 60 docker cp "$3:/quinistry" "$2" 2>>"$T/err"
	local rc=$?
	docker rm -f "$3" >/dev/null 2>&1
	[ $rc = 0 ] || diag <"$T/err"
	return $rc
}

# Pull generation N from PORT, rebuild its source, run the rebuild; unless
# N is 3, run the pulled image as a container, generation N+1 (sets PORT).
docker_gen() { # n port
	local d="docker gen $1:" w=$T/docker$1 img=127.0.0.1:$2/quinistry:latest got
	mkdir -p "$w"
	got=$(docker_pull_digest "$img")
	check "$d docker pull $img reports $D" [ "$got" = "$D" ] || return 1
	image_binary "$img" "$w/image-bin" "$TAG-cp$1" ||
		{ nok "$d docker create + docker cp /quinistry"; return 1; }
	[ "$1" = 1 ] &&
		check "$d /quinistry in the pulled image is $Q, byte for byte" \
			cmp "$w/image-bin" "$Q"
	timeout 60 docker run --rm --name "$TAG-src$1" "$img" source \
		>"$w/src.tar" 2>"$T/err" || diag <"$T/err"
	source_ok "$d docker run --rm IMAGE source:" "$w/src.tar" "$w/src" ||
		{ nok "$d unpack the source"; return 1; }
	[ "$1" = 1 ] && check "$d the source is this checkout's $SOURCES" repo_same "$w/src"
	rebuild_ok "$d" "$w/src" "$w/image-bin" "/quinistry of the pulled image" ||
		return 1
	serve_rebuild "$d the rebuild" "$w/src/quinistry" "$w/rebuild.log"
	[ "$1" = 3 ] && return 0

	PORT=$(free_port) || { nok "$d free port"; return 1; }
	if ! timeout 60 docker run -d --name "$TAG-g$(($1 + 1))" --network host \
		-e PORT="$PORT" "$img" >/dev/null 2>"$T/err"; then
		diag <"$T/err"
		nok "docker gen $(($1 + 1)): the container starts"
		return 1
	fi
	check "docker gen $(($1 + 1)) (container, PORT=$PORT) answers GET /v2/" \
		wait_http "$PORT" 15 || return 1
	docker logs "$TAG-g$(($1 + 1))" >"$w/next.log" 2>&1
	same_as_gen1 "docker gen $(($1 + 1))" "$PORT" "$w/next.log"
}

docker_path() {
	local n port=$A
	docker_ready "docker: the verify loop" || return 0
	for n in 1 2 3; do
		docker_gen "$n" "$port" || return
		port=$PORT
	done
	docker_cleanup
}

# ---------------------------------------------------------------- main
suite_needs verify: curl tar python3 make cmp
if ! have musl-gcc; then
	missing "verify: the rebuild needs musl-gcc" "musl-gcc missing"
	exit 0
fi
TOOLCHAIN=$(toolchain)
echo "# toolchain: $TOOLCHAIN"
if ! start_gen1; then
	nok "verify: gen 1 ($Q -l 127.0.0.1:0) starts and logs its digests"
	exit 1
fi
ok "verify: gen 1 on 127.0.0.1:$A, source artifact $S"
check "verify: gen 1 serves its logged manifests and lists the artifact as a referrer" \
	gen1_set_ok || exit 1

curl_path
setup_daemons
docker_path
exit 0
