#!/usr/bin/env bash
# Protocol conformance of the real binary over real sockets, with curl:
# every endpoint, header and error of the pull side, HTTP/1.1 framing, the
# log, the options, and the fixed point over three generations.
# Prints one "ok - " / "not ok - " line per check (see test.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
sha() { sha256sum "$1" | cut -d' ' -f1; }

# req METHOD PATH [curl args]: headers in $T/h, body in $T/b, status in S.
req() {
	local m=$1 p=$2; shift 2
	local how=(-X "$m")
	local out="$T/b"; : >"$T/b"
	# curl -I also writes the head to -o; HEAD bodies are checked raw
	[ "$m" = HEAD ] && how=(-I) && out=/dev/null && : >"$T/b"
	S=$(curl -s -m 10 --path-as-is "${how[@]}" -o "$out" -D "$T/h" \
		-w '%{http_code}' "$@" "http://$ADDR$p")
	tr -d '\r' <"$T/h" >"$T/h2" && mv "$T/h2" "$T/h"
}
hdr() { grep -i "^$1:" "$T/h" | head -1 | cut -d' ' -f2-; }
body() { cat "$T/b"; }
errcode() { grep -o '"code":"[A-Z_]*"' "$T/b" | head -1 | cut -d'"' -f4; }
raw() { # raw REQUEST-BYTES: one connection, returns everything read
	exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}"
	printf "$1" >&3
	timeout 3 cat <&3
	exec 3<&-
}
# no_body PATH [HEADER]: a HEAD on its own connection ends right after
# the blank line that ends the head.
no_body() {
	raw "HEAD $1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${2:+$2\r\n}\r\n" >"$T/raw"
	[ "$(grep -c '^HTTP/1.1' "$T/raw")" = 1 ] && [ "$(tail -c 4 "$T/raw" | od -An -c | tr -d ' ')" = '\r\n\r\n' ]
}
json_ok() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }

start "$T/log" "$Q" -l 127.0.0.1:0 || { nok "server starts"; exit 1; }
ok "server starts and logs its address ($ADDR)"
DOCKER=$(sed -n 's/^  docker manifest //p' "$T/log")
OCI=$(sed -n 's/^  oci manifest *//p' "$T/log")
CONFIG=$(sed -n 's/^  config *//p' "$T/log")
LAYER=$(sed -n 's/^  layer *\(sha256:[0-9a-f]*\).*/\1/p' "$T/log")
check "start-up log names four sha256 digests" \
	test "${#DOCKER}${#OCI}${#CONFIG}${#LAYER}" = 71717171
MT_D=application/vnd.docker.distribution.manifest.v2+json
MT_O=application/vnd.oci.image.manifest.v1+json

# --- the base endpoint (distribution-spec "Determining support")
req GET /v2/
check "GET /v2/ is 200 {}" test "$S:$(body)" = "200:{}"
check "GET /v2/ is application/json" test "$(hdr content-type)" = application/json
check "GET /v2/ has Docker-Distribution-API-Version" \
	test "$(hdr docker-distribution-api-version)" = registry/2.0
check "GET /v2/ digest header is the body's sha256" \
	test "$(hdr docker-content-digest)" = "sha256:$(sha "$T/b")"
req GET /v2
check "GET /v2 (no slash) is 200" test "$S" = 200
cp "$T/h" "$T/get_h"
req HEAD /v2/
check "HEAD /v2/ sends exactly the GET headers" diff <(grep -v ^Date "$T/get_h") <(grep -v ^Date "$T/h")
check "HEAD /v2/ sends no body" no_body /v2/

# --- manifests by tag, with Accept negotiation
req GET /v2/quinistry/manifests/latest
check "manifest by tag, curl's */*: Docker schema 2" \
	test "$S:$(hdr content-type)" = "200:$MT_D"
check "manifest body digest = Docker-Content-Digest = logged digest" \
	test "$(hdr docker-content-digest)" = "sha256:$(sha "$T/b")" -a "$DOCKER" = "sha256:$(sha "$T/b")"
check "manifest ETag is the quoted digest" test "$(hdr etag)" = "\"$DOCKER\""
check "manifest by tag varies on Accept" test "$(hdr vary)" = Accept
check "manifest is valid JSON" json_ok "$T/b"
check "manifest mediaType equals its Content-Type" grep -q "\"mediaType\":\"$MT_D\"" "$T/b"
check "manifest Content-Length is exact" test "$(hdr content-length)" = "$(stat -c %s "$T/b")"
check "docker manifest names config and layer" \
	bash -c "grep -q '$CONFIG' '$T/b' && grep -q '$LAYER' '$T/b' && grep -q 'application/vnd.docker.image.rootfs.diff.tar' '$T/b'"
cp "$T/b" "$T/docker.json"; cp "$T/h" "$T/get_h"
req HEAD /v2/quinistry/manifests/latest
check "HEAD manifest: exactly the GET headers" diff <(grep -v ^Date "$T/get_h") <(grep -v ^Date "$T/h")
check "HEAD manifest: no body" no_body /v2/quinistry/manifests/latest
req GET /v2/quinistry/manifests/latest -H "Accept: $MT_O"
check "Accept: OCI only gives the OCI manifest" test "$S:$(hdr content-type)" = "200:$MT_O"
check "OCI manifest digest matches log and body" \
	test "$(hdr docker-content-digest)" = "$OCI" -a "$OCI" = "sha256:$(sha "$T/b")"
check "OCI manifest mediaType equals its Content-Type" grep -q "\"mediaType\":\"$MT_O\"" "$T/b"
check "OCI manifest uses OCI config and layer types" \
	bash -c "grep -q 'application/vnd.oci.image.config.v1+json' '$T/b' && grep -q 'application/vnd.oci.image.layer.v1.tar\"' '$T/b'"
check "OCI manifest is valid JSON" json_ok "$T/b"
req GET /v2/quinistry/manifests/latest -H "Accept: $MT_O, $MT_D"
check "Accept listing both gives Docker" test "$(hdr content-type)" = "$MT_D"
req GET /v2/quinistry/manifests/latest -H "Accept: $MT_O" -H "Accept: $MT_D"
check "two Accept lines (OCI, Docker) give Docker" test "$(hdr content-type)" = "$MT_D"
req GET /v2/quinistry/manifests/latest -H "Accept: $MT_O;q=0.9, $MT_D;q=0"
check "Docker with q=0 gives OCI" test "$(hdr content-type)" = "$MT_O"
req GET /v2/quinistry/manifests/latest -H "Accept: */*, $MT_D; q=0"
check "*/* with Docker q=0 gives OCI (most specific range wins)" test "$(hdr content-type)" = "$MT_O"
req GET /v2/quinistry/manifests/latest -H "Accept: application/vnd.oci.image.index.v1+json"
check "Accept naming neither manifest gives Docker" test "$(hdr content-type)" = "$MT_D"
req GET /v2/quinistry/manifests/latest -H "ACCEPT: APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON"
check "Accept matching is case-insensitive" test "$(hdr content-type)" = "$MT_O"
# containerd's single comma-joined line ending in */*
req HEAD /v2/quinistry/manifests/latest -H "Accept: $MT_D, application/vnd.docker.distribution.manifest.list.v2+json, $MT_O, application/vnd.oci.image.index.v1+json, */*"
check "containerd-style HEAD gets Docker type, digest, length" \
	test "$S:$(hdr content-type):$(hdr docker-content-digest):$(hdr content-length)" = "200:$MT_D:$DOCKER:$(stat -c %s "$T/docker.json")"

# --- manifests by digest
req GET "/v2/quinistry/manifests/$DOCKER" -H "Accept: $MT_O"
check "Docker manifest by digest, whatever Accept says" \
	bash -c "test '$S:$(hdr content-type)' = '200:$MT_D' && cmp -s '$T/b' '$T/docker.json'"
check "manifest by digest has no Vary" test -z "$(hdr vary)"
req GET "/v2/quinistry/manifests/$OCI"
check "OCI manifest by digest" test "$S:$(hdr content-type):$(hdr docker-content-digest)" = "200:$MT_O:$OCI"

# --- blobs
req GET "/v2/quinistry/blobs/$CONFIG"
check "config blob: 200, digest of body" test "$S:sha256:$(sha "$T/b")" = "200:$CONFIG"
check "config blob has Accept-Ranges: bytes" test "$(hdr accept-ranges)" = bytes
cp "$T/b" "$T/config.json"
check "config is valid JSON" json_ok "$T/config.json"
ARCH=$(uname -m); case $ARCH in x86_64) ARCH=amd64;; aarch64) ARCH=arm64;; esac
for field in "\"architecture\":\"$ARCH\"" '"os":"linux"' '"User":"65534:65534"' \
	'"ExposedPorts":{"8080/tcp":{}}' '"Entrypoint":["/quinistry"]' \
	'"created":"1970-01-01T00:00:00Z"' "\"diff_ids\":[\"$LAYER\"]" '"history":[{'; do
	check "config has $field" grep -qF "$field" "$T/config.json"
done
compact() { python3 -c 'import json,sys; d=open(sys.argv[1]).read(); sys.exit(json.dumps(json.loads(d),separators=(",",":"))!=d)' "$1"; }
check "config is compact JSON (no whitespace between tokens)" compact "$T/config.json"
check "manifests are compact JSON" compact "$T/docker.json"
req GET "/v2/quinistry/blobs/$LAYER"
check "layer blob: 200, digest of body" test "$S:sha256:$(sha "$T/b")" = "200:$LAYER"
cp "$T/b" "$T/layer.tar"
check "layer is a tar with one entry: quinistry, 0755, 0/0, mtime 0" \
	test "$(TZ=UTC tar --full-time -tvf "$T/layer.tar" | tr -s ' ')" = \
	"-rwxr-xr-x 0/0 $(stat -c %s "$Q") 1970-01-01 00:00:00 quinistry"
check "layer: empty user and group names, ustar magic" \
	test "$(dd if="$T/layer.tar" bs=1 skip=257 count=8 2>/dev/null | od -An -c | tr -s ' ')" = " u s t a r \\0 0 0"
check "layer: uname/gname fields empty" \
	test "$(dd if="$T/layer.tar" bs=1 skip=265 count=64 2>/dev/null | tr -d '\0' | wc -c)" = 0
mkdir "$T/x" && tar xf "$T/layer.tar" -C "$T/x"
check "the layer's file is this very binary" cmp -s "$T/x/quinistry" "$Q"
check "layer size is 512-aligned with end-of-archive blocks" \
	test $(( $(stat -c %s "$T/layer.tar") % 512 )) = 0
SIZE=$(stat -c %s "$T/layer.tar")

# --- ranges (RFC 9110 section 14)
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=0-99"
check "Range a-b: 206, Content-Range, 100 bytes" \
	test "$S:$(hdr content-range):$(hdr content-length)" = "206:bytes 0-99/$SIZE:100"
check "Range a-b: the right bytes" cmp -s "$T/b" <(head -c 100 "$T/layer.tar")
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=1000-"
check "Range a-: rest of the blob" \
	bash -c "test '$S:$(hdr content-range)' = '206:bytes 1000-$((SIZE-1))/$SIZE' && cmp -s '$T/b' <(tail -c +1001 '$T/layer.tar')"
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=-50"
check "Range -n: last 50 bytes" \
	bash -c "test '$S:$(hdr content-range)' = '206:bytes $((SIZE-50))-$((SIZE-1))/$SIZE' && cmp -s '$T/b' <(tail -c 50 '$T/layer.tar')"
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=10-99999999"
check "Range past the end is clamped" test "$S:$(hdr content-range)" = "206:bytes 10-$((SIZE-1))/$SIZE"
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=$SIZE-"
check "unsatisfiable Range: 416 with bytes */N" test "$S:$(hdr content-range)" = "416:bytes */$SIZE"
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=-0"
check "Range -0 is unsatisfiable" test "$S" = 416
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=0-1,5-6"
check "multiple ranges: whole blob with 200" test "$S:$(hdr content-length)" = "200:$SIZE"
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=9-3"
check "invalid range is ignored: 200" test "$S" = 200
req HEAD "/v2/quinistry/blobs/$CONFIG" -H "Range: bytes=0-9"
check "HEAD with Range: 206 head" test "$S:$(hdr content-length)" = 206:10
check "HEAD with Range: no body" no_body "/v2/quinistry/blobs/$CONFIG" "Range: bytes=0-9"
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=0-9" -H "If-Range: \"sha256:0000\""
check "If-Range with another tag: whole blob" test "$S" = 200
req GET "/v2/quinistry/blobs/$LAYER" -H "Range: bytes=0-9" -H "If-Range: \"$LAYER\""
check "If-Range with our tag: the range" test "$S" = 206

# --- conditional requests (RFC 9110 section 13.1.2)
req GET /v2/quinistry/manifests/latest -H "If-None-Match: \"$DOCKER\""
check "If-None-Match with the digest: 304 with its ETag" test "$S:$(hdr etag)" = "304:\"$DOCKER\""
check "304 has no body" test ! -s "$T/b"
req GET "/v2/quinistry/blobs/$LAYER" -H "If-None-Match: W/\"x\", W/\"$LAYER\""
check "If-None-Match weak list: 304" test "$S" = 304
req GET "/v2/quinistry/blobs/$LAYER" -H "If-None-Match: *"
check "If-None-Match *: 304" test "$S" = 304
req GET "/v2/quinistry/blobs/$CONFIG" -H "If-None-Match: \"sha256:other\""
check "If-None-Match other tag: 200" test "$S" = 200

# --- tags, catalog, referrers
page() { # page PATH BODY DESC: GET PATH answers exactly BODY
	req GET "$1"
	check "$3" test "$(body)" = "$2"
}
NO_TAGS='{"name":"quinistry","tags":[]}' TAGS='{"name":"quinistry","tags":["latest"]}'
req GET /v2/quinistry/tags/list
check "tags/list" test "$S:$(body)" = "200:$TAGS"
check "tags/list is JSON with its digest" test "$(hdr content-type):$(hdr docker-content-digest)" = "application/json:sha256:$(sha "$T/b")"
page "/v2/quinistry/tags/list?n=0" "$NO_TAGS" "tags/list?n=0 is empty"
page "/v2/quinistry/tags/list?n=1" "$TAGS" "tags/list?n=1 has latest"
page "/v2/quinistry/tags/list?last=latest" "$NO_TAGS" "tags/list?last=latest is empty"
page "/v2/quinistry/tags/list?n=5&last=a" "$TAGS" "tags/list?n=5&last=a has latest"
req GET "/v2/quinistry/tags/list?n=-1"
check "tags/list?n=-1: 400 PAGINATION_NUMBER_INVALID" test "$S:$(errcode)" = 400:PAGINATION_NUMBER_INVALID
req GET /v2/_catalog
check "_catalog" test "$S:$(body)" = '200:{"repositories":["quinistry"]}'
page "/v2/_catalog?n=0" '{"repositories":[]}' "_catalog?n=0 is empty"
page "/v2/_catalog?last=quinistry" '{"repositories":[]}' "_catalog?last=quinistry is empty"
req GET "/v2/quinistry/referrers/$DOCKER"
check "referrers: empty OCI index" \
	test "$S:$(hdr content-type):$(body)" = '200:application/vnd.oci.image.index.v1+json:{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
req GET "/v2/quinistry/referrers/$DOCKER?artifactType=application/x-sig"
check "referrers with artifactType says OCI-Filters-Applied" test "$(hdr oci-filters-applied)" = artifactType
req GET /v2/quinistry/referrers/sha256:nothex
check "referrers with a bad digest: 400 DIGEST_INVALID" test "$S:$(errcode)" = 400:DIGEST_INVALID

# --- the source artifact (issue 12; image-spec 1.1 artifacts, distribution-
# spec "Listing Referrers"): listed for the OCI manifest, fetched by digest
AT=application/vnd.quinistry.source.v1
MT_I=application/vnd.oci.image.index.v1+json
EMPTY=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
SOURCE=$(sed -n 's/^  source *\(sha256:[0-9a-f]*\).*/\1/p' "$T/log")
check "start-up log names the source artifact's manifest digest" test "${#SOURCE}" = 71
req GET "/v2/quinistry/manifests/$OCI"; cp "$T/b" "$T/oci.json"
req GET "/v2/quinistry/referrers/$OCI"; cp "$T/b" "$T/referrers.json"
SRC_SIZE=$(curl -s "http://$ADDR/v2/quinistry/manifests/$SOURCE" | wc -c)
LISTED="{\"mediaType\":\"$MT_O\",\"size\":$SRC_SIZE,\"digest\":\"$SOURCE\","
LISTED+="\"artifactType\":\"$AT\"}"
INDEX="{\"schemaVersion\":2,\"mediaType\":\"$MT_I\",\"manifests\":"
check "referrers of the OCI manifest: one descriptor, the source artifact" \
	test "$S:$(hdr content-type):$(body)" = "200:$MT_I:$INDEX[$LISTED]}"
check "referrers without a filter: no OCI-Filters-Applied" test -z "$(hdr oci-filters-applied)"
req GET "/v2/quinistry/referrers/$OCI?artifactType=$AT"
check "referrers ?artifactType=ours: the same list, OCI-Filters-Applied" \
	test "$(hdr oci-filters-applied):$(body)" = "artifactType:$(cat "$T/referrers.json")"
req GET "/v2/quinistry/referrers/$OCI?artifactType=application%2Fvnd.quinistry.source.v1"
check "referrers ?artifactType percent-encoded: decoded, the same list" \
	test "$(body)" = "$(cat "$T/referrers.json")"
req GET "/v2/quinistry/referrers/$OCI?artifactType=application/x-sig"
check "referrers ?artifactType=another: empty, OCI-Filters-Applied" \
	test "$(hdr oci-filters-applied):$(body)" = "artifactType:$INDEX[]}"
req GET "/v2/quinistry/referrers/$OCI?artifactType=%zz"
check "referrers ?artifactType undecodable: 400" test "$S" = 400
req GET "/v2/quinistry/manifests/$SOURCE"; cp "$T/b" "$T/source.json"
check "source manifest by digest: 200, OCI type, digest = sha256 of body" \
	test "$S:$(hdr content-type):$(hdr docker-content-digest)" = "200:$MT_O:sha256:$(sha "$T/b")"
# schema checks: the artifact's fields as image-spec 1.1 asks, its subject
# the OCI manifest's descriptor, its config the empty descriptor
SRC_LAYER=$(python3 - "$T/source.json" "$T/oci.json" "$OCI" "$EMPTY" "$AT" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
oci = open(sys.argv[2], "rb").read()
want = {"schemaVersion", "mediaType", "artifactType", "config", "layers", "subject"}
ok = (set(m) == want and m["schemaVersion"] == 2 and
      m["mediaType"] == "application/vnd.oci.image.manifest.v1+json" and
      m["artifactType"] == sys.argv[5] and
      m["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                      "size": 2, "digest": sys.argv[4]} and
      len(m["layers"]) == 1 and
      m["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar" and
      m["subject"] == {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "size": len(oci), "digest": sys.argv[3]})
print(m["layers"][0]["digest"] + " " + str(m["layers"][0]["size"]) if ok else "bad")
PY
)
check "source manifest: mediaType, artifactType, empty config, one layer, subject = OCI manifest" \
	test "${SRC_LAYER:-bad}" != bad
req HEAD "/v2/quinistry/manifests/$SOURCE"
check "HEAD source manifest: 200, its length" \
	test "$S:$(hdr content-length)" = "200:$(stat -c %s "$T/source.json")"
req GET "/v2/quinistry/blobs/$EMPTY"
check "the empty config blob: {} with its digest" \
	test "$S:$(body):$(hdr docker-content-digest)" = "200:{}:$EMPTY"
req HEAD "/v2/quinistry/blobs/$EMPTY"
check "HEAD of the empty config blob: 200, length 2, its digest" \
	test "$S:$(hdr content-length):$(hdr docker-content-digest)" = "200:2:$EMPTY"
req GET "/v2/quinistry/blobs/${SRC_LAYER% *}"; cp "$T/b" "$T/source.tar"
check "source tar blob: its digest and size as the manifest says" \
	test "sha256:$(sha "$T/source.tar") $(stat -c %s "$T/source.tar")" = "$SRC_LAYER"
req HEAD "/v2/quinistry/blobs/${SRC_LAYER% *}"
check "HEAD of the source tar blob: 200, its length and digest" test \
	"$S:$(hdr content-length) $(hdr docker-content-digest)" = "200:${SRC_LAYER#* } ${SRC_LAYER% *}"
"$Q" source >"$T/cmd.tar" 2>/dev/null
check "the served source tar is what 'quinistry source' writes" cmp -s "$T/source.tar" "$T/cmd.tar"
check "'quinistry source | tar t' lists exactly the build inputs" test \
	"$(tar tf "$T/cmd.tar" | tr '\n' ' ')" = "Makefile quinistry.c sha256.c sha256.h "
check "source tar: every entry 0644, 0/0, mtime 0" test "$(TZ=UTC tar --numeric-owner \
	--full-time -tvf "$T/cmd.tar" | grep -Ec '^-rw-r--r-- 0/0 +[0-9]+ 1970-01-01 00:00:00 ')" = 4
mkdir -p "$T/src" && tar xf "$T/cmd.tar" -C "$T/src"
check "source tar: the repository's files, byte for byte" \
	bash -c "for f in Makefile quinistry.c sha256.c sha256.h; do cmp -s $T/src/\$f \$f || exit 1; done"
req GET "/v2/quinistry/blobs/${SRC_LAYER% *}" -H "Range: bytes=0-511"
check "source tar blob: Range gives 206 with its first block" \
	test "$S:$(stat -c %s "$T/b"):$(sha "$T/b")" = \
	"206:512:$(head -c 512 "$T/source.tar" | sha256sum | cut -c1-64)"

# --- errors (distribution-spec "Error Codes")
errcase() { # DESC METHOD PATH STATUS CODE
	req "$2" "$3"
	if [ "$S:$(errcode)" = "$4:$5" ] && [ "$(hdr content-type)" = application/json ] &&
		json_ok "$T/b" && [ "$(hdr docker-distribution-api-version)" = registry/2.0 ] &&
		[ "$(hdr content-length)" = "$(stat -c %s "$T/b")" ]; then
		ok "$1: $4 $5"
	else
		nok "$1: want $4 $5, got $S $(errcode)"
	fi
}
Z64=$(printf '0%.0s' $(seq 64))
errcase "other repository" GET /v2/library/ubuntu/manifests/latest 404 NAME_UNKNOWN
errcase "other repository, blobs" GET "/v2/other/blobs/$LAYER" 404 NAME_UNKNOWN
errcase "uppercase name" GET /v2/Quinistry/manifests/latest 400 NAME_INVALID
errcase "name with a bad separator" GET /v2/quin..istry/manifests/latest 400 NAME_INVALID
errcase "unknown tag" GET /v2/quinistry/manifests/v1 404 MANIFEST_UNKNOWN
errcase "unknown manifest digest" GET "/v2/quinistry/manifests/sha256:$Z64" 404 MANIFEST_UNKNOWN
errcase "config digest is not a manifest" GET "/v2/quinistry/manifests/$CONFIG" 404 MANIFEST_UNKNOWN
errcase "malformed manifest digest" GET /v2/quinistry/manifests/sha256:abc 400 DIGEST_INVALID
errcase "uppercase hex digest" GET "/v2/quinistry/blobs/sha256:$(echo "${LAYER#sha256:}" | tr a-f A-F)" 400 DIGEST_INVALID
errcase "unknown blob" GET "/v2/quinistry/blobs/sha256:$Z64" 404 BLOB_UNKNOWN
errcase "manifest digest is not a blob" GET "/v2/quinistry/blobs/$DOCKER" 404 BLOB_UNKNOWN
errcase "blob by tag" GET /v2/quinistry/blobs/latest 400 DIGEST_INVALID
errcase "HEAD unknown blob" GET "/v2/quinistry/blobs/sha512:$Z64$Z64" 404 BLOB_UNKNOWN
for m in POST PUT PATCH DELETE; do
	req $m /v2/quinistry/blobs/uploads/
	check "$m under /v2/: 405 UNSUPPORTED with Allow" \
		test "$S:$(errcode):$(hdr allow)" = "405:UNSUPPORTED:GET, HEAD"
done
req DELETE "/v2/quinistry/manifests/$DOCKER"
check "DELETE a manifest: 405" test "$S" = 405
req OPTIONS /v2/
check "OPTIONS: 501" test "$S" = 501
req BREW /v2/
check "unknown method: 501" test "$S" = 501
req GET /index.html
check "a path outside /v2/: 404" test "$S" = 404
req GET /v2/quinistry/
check "/v2/quinistry/ without an endpoint: 404" test "$S" = 404
req GET "/v2/quinistry/manifests/latest?ns=docker.io"
check "query strings (containerd ?ns=) do not break routing" test "$S:$(hdr content-type)" = "200:$MT_D"
req GET /v2/quinistry/manifests/%6catest
check "percent-encoded path is decoded (%6c = l)" test "$S" = 200
req GET /v2/quinistry%2Fmanifests/latest
check "encoded slash is refused: 400" test "$S" = 400
req GET /v2/quinistry/manifests/lat%00est
check "%00 is refused: 400" test "$S" = 400
req GET /v2/quinistry/manifests/lat%zzest
check "invalid escape is refused: 400" test "$S" = 400
req GET /v2/quinistry/../quinistry/manifests/latest
check "dot-dot segment is refused: 400" test "$S" = 400
req GET "/v2/$(printf 'a%.0s' $(seq 300))/manifests/latest"
check "a 300-character name: 400 NAME_INVALID" test "$S:$(errcode)" = 400:NAME_INVALID

# --- HTTP/1.1 connection handling (RFC 9112 section 9)
n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' \
	"http://$ADDR/v2/" "http://$ADDR/v2/quinistry/manifests/latest" | tr '\n' ' ')
check "keep-alive: the second request reuses the connection" test "$n" = "1 0 "
out=$(raw 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/quinistry/tags/list HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
check "pipelining: three responses in request order, then close" \
	test "$(echo "$out" | grep -o 'HTTP/1.1 [0-9]*' | tr '\n' ,)" = "HTTP/1.1 200,HTTP/1.1 200,HTTP/1.1 404,"
check "pipelining: bodies in order" grep -q '^{}HTTP/1.1 200' <<<"$out"
check "pipelining: second body before third head" grep -q '^{"name":"quinistry","tags":\["latest"\]}HTTP/1.1 404' <<<"$out"
out=$(raw 'GET /v2/ HTTP/1.0\r\n\r\n')
check "HTTP/1.0 without keep-alive: Connection: close" bash -c "echo '$out' | grep -q '^Connection: close'"
out=$(raw 'GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v2/ HTTP/1.0\r\n\r\n')
check "HTTP/1.0 keep-alive: kept, then closed" \
	test "$(echo "$out" | tr -d '\r' | grep '^Connection' | tr '\n' ,)" = "Connection: keep-alive,Connection: close,"
out=$(raw 'POST /v2/quinistry/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n')
check "a request body is never parsed as a request: 405 then close" \
	test "$(echo "$out" | grep -c '^HTTP/1.1')$(echo "$out" | tr -d '\r' | grep '^Connection')" = "1Connection: close"
out=$(raw 'GET /v2/ HTTP/1.1\r\n\r\n')
check "HTTP/1.1 without Host: 400" bash -c "echo '$out' | grep -q '^HTTP/1.1 400'"
out=$(raw 'GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n')
check "HTTP/2.0 request line: 505" bash -c "echo '$out' | grep -q '^HTTP/1.1 505'"
out=$(raw 'GET /v2/\r\n\r\n')
check "HTTP/0.9 request: 400" bash -c "echo '$out' | grep -q '^HTTP/1.1 400'"
out=$(raw 'GET http://registry.example/v2/ HTTP/1.1\r\nHost: x\r\n\r\n')
check "absolute-form request-target: 200" bash -c "echo '$out' | grep -q '^HTTP/1.1 200'"

# --- the log
sleep 0.2
check "log line: time (ms), client, method, target, status, bytes, duration, what, User-Agent" \
	grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z 127\.0\.0\.1:[0-9]+ GET /v2/quinistry/manifests/latest 200 $(stat -c %s "$T/docker.json") [0-9]+\.[0-9]{3}ms docker-manifest \"curl/[^\"]*\"$" "$T/log"
check "log line for a layer" grep -qE " GET /v2/quinistry/blobs/$LAYER 200 $SIZE [0-9.]+ms layer \"" "$T/log"
check "log line for an error" grep -qE " GET /v2/quinistry/manifests/v1 404 [0-9]+ [0-9.]+ms error \"" "$T/log"

# --- shutdown (the binary is PID 1 in its container). At SIGTERM the idle
# keep-alive connections close at once and a response under way finishes;
# then the process exits, long before the grace (SHUTDOWN_GRACE_MS) that
# it would wait out if the idle ones were left open.
GRACE=$(limit SHUTDOWN_GRACE_MS 500)
H=${ADDR%:*} P=${ADDR##*:}
answered() { # answered FD: GET /v2/ on FD, its whole response read back
	local line len=0 body
	printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&"$1"
	while IFS= read -r -t 2 line <&"$1" && [ -n "${line%$'\r'}" ]; do
		case ${line,,} in content-length:*) len=${line//[!0-9]/} ;; esac
	done
	read -r -t 2 -N "$len" body <&"$1" && [ "$body" = '{}' ]
}
eof_at() { # eof_at FD FILE: read FD to its end (into FILE.data), in the
	# background; then the time in µs goes to FILE
	{ timeout 3 cat <&"$1" >"$2.data"; echo "${EPOCHREALTIME/./}" >"$2"; } &
	READERS+=("$!")
}
whole() { # whole FILE: how many complete responses FILE holds, and the rest
	python3 -c 'import re,sys
d = open(sys.argv[1], "rb").read(); i = n = 0
while True:
    e = d.find(b"\r\n\r\n", i)
    m = re.search(rb"(?im)^content-length: *([0-9]+)", d[i:e]) if e > 0 else None
    if not m or e + 4 + int(m.group(1)) > len(d): break
    i, n = e + 4 + int(m.group(1)), n + 1
print(n, "and nothing else" if i == len(d) else "and a cut one")' "$1"
}
READERS=() idle=0
for fd in 5 6 7; do
	eval "exec $fd<>/dev/tcp/$H/$P"
	answered $fd && idle=$((idle + 1))
	eof_at $fd "$T/idle$fd"
done
# 40 layer requests at once: their responses fill the socket buffers, so
# at SIGTERM one of them is under way
exec 8<>"/dev/tcp/$H/$P"
for _ in $(seq 40); do
	printf 'GET /v2/quinistry/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n' "$LAYER"
done >&8
sleep 0.3
t0=${EPOCHREALTIME/./}
kill -TERM "$SPID"
eof_at 8 "$T/busy"
exec 5<&- 6<&- 7<&- 8<&-
wait_exit "$SPID" 10; rc=$?
ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
wait "${READERS[@]}"
waits=() worst=0
for fd in 5 6 7; do
	w=$(( ($(cat "$T/idle$fd") - t0) / 1000 ))
	[ -s "$T/idle$fd.data" ] && w=9999
	waits+=("$w"); [ "$w" -gt $worst ] && worst=$w
done
check "SIGTERM: $idle of 3 idle keep-alive connections, each closed within $((GRACE * 2 / 5)) ms (${waits[*]} ms)" \
	test $idle = 3 -a $worst -lt $((GRACE * 2 / 5))
read -r n rest < <(whole "$T/busy.data")
check "SIGTERM: the response under way completes, no later one starts ($n of 40 whole responses $rest)" \
	test "$rest" = "and nothing else" -a "$n" -ge 1 -a "$n" -lt 40
check "SIGTERM: exit status 0 within $((GRACE * 3 / 5)) ms, not at the end of the $GRACE ms grace (${ms} ms)" \
	test "$rc" = 0 -a "$ms" -lt $((GRACE * 3 / 5))

# --- options
check "--help prints usage, exit 0" bash -c "'$Q' --help | grep -q '^usage: quinistry'"
check "--version" bash -c "'$Q' --version | grep -q '^quinistry [0-9]'"
"$Q" --bogus >/dev/null 2>"$T/err"; rc=$?
check "unknown option: message and exit 2" bash -c "test $rc = 2 && grep -q 'unknown option' '$T/err'"
"$Q" -l 'nonsense:port' 2>"$T/err"; rc=$?
check "malformed listen address: exit 2" test $rc = 2
# 192.0.2.1 (TEST-NET-1) is on no interface here: bind() fails, no packet
"$Q" -l 192.0.2.1:8080 2>"$T/err"; rc=$?
check "an address not on this machine: clear message and exit 1" \
	bash -c "test $rc = 1 && grep -q 'cannot listen on 192.0.2.1:8080' '$T/err'"
start "$T/log2" "$Q" -l 127.0.0.1:0 -q || nok "second server starts"
"$Q" -l "$ADDR" 2>"$T/err"; rc=$?
check "port taken: clear message and exit 1" bash -c "test $rc = 1 && grep -q 'cannot listen' '$T/err'"
curl -s "http://$ADDR/v2/" >/dev/null
sleep 0.2
check "-q: no request log lines" bash -c "! grep -q ' GET /v2/ ' '$T/log2'"
PORT=0 "$Q" 2>"$T/log3" & PIDS+=($!)
sleep 0.3
check "PORT environment variable sets the port ([::], IPv6 and IPv4)" grep -q '^quinistry: listening on \[::\]:' "$T/log3"
PORT=x "$Q" 2>/dev/null; rc=$?
check "bad PORT: exit 2" test $rc = 2
if command -v cc >/dev/null; then
	cc -std=c99 -O0 -o "$T/dyn" quinistry.c sha256.c 2>/dev/null
	"$T/dyn" -l 127.0.0.1:0 2>"$T/dynlog" & PIDS+=($!)
	sleep 0.3
	check "a dynamic build warns that its image will not run" grep -q 'dynamically linked' "$T/dynlog"
	if is_static; then
		check "the static build does not warn" bash -c "! grep -q 'dynamically linked' '$T/log'"
	fi
fi

# --- the fixed point: generation g+1 is the binary taken out of g's layer
prev="$Q"
for g in 1 2 3; do
	start "$T/gen$g.log" "$prev" -l 127.0.0.1:0 -q || { nok "generation $g starts"; break; }
	L=$(sed -n 's/^  layer *\(sha256:[0-9a-f]*\).*/\1/p' "$T/gen$g.log")
	mkdir -p "$T/gen$g"
	curl -s "http://$ADDR/v2/quinistry/blobs/$L" | tar xf - -C "$T/gen$g"
	for u in /v2/quinistry/manifests/latest "/v2/quinistry/manifests/$OCI" \
		"/v2/quinistry/blobs/$CONFIG" "/v2/quinistry/blobs/$LAYER"; do
		curl -s "http://$ADDR$u" | sha256sum | cut -d' ' -f1
	done >"$T/gen$g.sums"
	check "generation $g logs the same four digests as the built binary" \
		diff <(grep '^  ' "$T/log") <(grep '^  ' "$T/gen$g.log")
	check "generation $g serves byte-identical manifests, config and layer" \
		test "$(tr '\n' ' ' <"$T/gen$g.sums")" = "${DOCKER#sha256:} ${OCI#sha256:} ${CONFIG#sha256:} ${LAYER#sha256:} "
	check "generation $g's layer holds a byte-identical binary (generation $((g+1)))" \
		cmp -s "$T/gen$g/quinistry" "$Q"
	prev="$T/gen$g/quinistry"
done
exit 0
