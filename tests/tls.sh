#!/bin/bash
# TLS through a reverse proxy, with verification on: nginx terminates TLS in
# front of quinistry, using the config block from README.md ("Behind TLS"),
# and skopeo, podman and docker pull through it, each trusting only a CA
# this suite makes with openssl. Every client must get the digests that
# quinistry serves directly.
#
# Why a network namespace: dockerd treats any registry on 127.0.0.0/8 as
# insecure and then never verifies its certificate (nor reads certs.d), so
# a proxy on loopback would prove nothing for docker. quinistry and nginx
# therefore run in a namespace of their own, nginx reached from here over a
# veth pair at 198.18.X.2 (the benchmarking range), as another host would
# be. Inside the namespace nginx talks to quinistry over loopback.
#
# The README's block is used as written, except for what must differ on a
# test machine: `listen 443` becomes a free port, 127.0.0.1:8080 the
# server's port, /etc/nginx/tls/ the suite's directory. A wrapper
# nginx.conf keeps pid, logs and temp files in the work dir.
#
# Env: QUINISTRY (binary, default ./quinistry), CI=true (a missing tool or
# daemon is a failure, else a skip), README (default README.md),
# QT_DAEMONS_ENV (see tests/daemons.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/clientlib.sh || exit 1

begin_suite qt-tls
TAG=qttls$$ # prefix of container names (none are made, but cleanup uses it)
CTR_NS=""
PM_STORES=(1 2)
README=${README:-README.md}
NS=qt-tls-$$
VH=qtls$$h VN=qtls$$n # veth ends: here and in the namespace
NS_MADE=0 DOCKER_CA_DIR=''

# After lib.sh has stopped quinistry and nginx (PIDS) and clientlib has
# emptied the podman stores and docker: our own traces outside T.
tls_cleanup() {
	# A pull that failed must not leave the CA trusted by dockerd.
	if [ -n "$DOCKER_CA_DIR" ]; then
		rm -rf "$DOCKER_CA_DIR"
		rmdir /etc/docker/certs.d /etc/docker 2>/dev/null
	fi
	if [ $NS_MADE = 1 ]; then
		ip link del "$VH" 2>/dev/null
		ip netns del "$NS" 2>/dev/null
	fi
}
at_exit tls_cleanup

# ---------------------------------------------------------------- setup
# A /30 in 198.18.0.0/15 that no interface here uses yet: sets HOST_IP
# (our end) and NS_IP (the namespace's end, where nginx listens).
pick_subnet() {
	local i x
	for i in $(seq 0 20); do
		x=$((($$ + i * 37) % 250 + 1))
		ip -br addr | grep -q "198\.18\.$x\." && continue
		HOST_IP=198.18.$x.1 NS_IP=198.18.$x.2
		return 0
	done
	return 1
}

make_netns() {
	pick_subnet || return 1
	ip netns add "$NS" || return 1
	NS_MADE=1
	ip link add "$VH" type veth peer name "$VN" &&
		ip link set "$VN" netns "$NS" &&
		ip addr add "$HOST_IP/30" dev "$VH" &&
		ip link set "$VH" up &&
		ip -n "$NS" addr add "$NS_IP/30" dev "$VN" &&
		ip -n "$NS" link set "$VN" up &&
		ip -n "$NS" link set lo up
}

# A CA, and a server certificate it signs for the names clients use.
make_certs() {
	local d=$T/tls
	mkdir -p "$d" || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 2 -subj /CN=quinistry-test-ca -keyout "$d/ca.key" \
		-out "$d/ca.crt" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj /CN=quinistry -keyout "$d/quinistry.key" \
			-out "$d/quinistry.csr" &&
		printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$NS_IP" \
			basicConstraints=CA:FALSE extendedKeyUsage=serverAuth >"$d/ext" &&
		openssl x509 -req -in "$d/quinistry.csr" -CA "$d/ca.crt" \
			-CAkey "$d/ca.key" -CAcreateserial -days 2 \
			-extfile "$d/ext" -out "$d/quinistry.crt"
}

# quinistry in the namespace on a port it picks: sets QP and the digests.
start_quinistry() {
	local log=$T/quinistry.log i=0
	ip netns exec "$NS" "$Q" -l 0.0.0.0:0 >/dev/null 2>"$log" &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	while [ $i -lt 100 ] && ! grep -q 'listening on' "$log"; do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	QP=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$log" | head -n 1)
	[ -n "$QP" ] && log_digests "$log" || { diag <"$log"; return 1; }
}

# The README's nginx block, adapted as said at the top.
readme_nginx_conf() {
	awk '/^```nginx$/ { on = 1; next } on && /^```$/ { exit } on' "$README" |
		sed -e "s/listen 443 ssl;/listen $NP ssl;/" \
			-e "s/127\.0\.0\.1:8080/127.0.0.1:$QP/" \
			-e "s|/etc/nginx/tls/|$T/tls/|"
}

start_nginx() {
	local n=$T/ngx i=0 p
	mkdir -p "$n/tmp" || return 1
	readme_nginx_conf >"$n/quinistry.conf"
	grep -q "listen $NP ssl;" "$n/quinistry.conf" || {
		echo "no nginx block with 'listen 443 ssl;' in $README" | diag
		return 1
	}
	{
		echo "worker_processes 1; pid $n/nginx.pid;"
		echo "events { worker_connections 256; }"
		echo "http {"
		echo "  access_log $n/access.log;"
		for p in client_body proxy fastcgi uwsgi scgi; do
			echo "  ${p}_temp_path $n/tmp/$p;"
		done
		echo "  include $n/quinistry.conf;"
		echo "}"
	} >"$n/nginx.conf"
	ip netns exec "$NS" nginx -t -q -e "$n/error.log" -p "$n/" -c "$n/nginx.conf" \
		2>"$T/err" || { diag <"$T/err"; return 1; }
	ip netns exec "$NS" nginx -e "$n/error.log" -p "$n/" -c "$n/nginx.conf" \
		-g 'daemon off;' 2>>"$n/error.log" &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	while [ $i -lt 100 ]; do
		curl -s -o /dev/null -k "https://$NS_IP:$NP/v2/" && return 0
		kill -0 "$NGINX_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	diag <"$n/error.log"
	return 1
}

# ---------------------------------------------------------------- curl
# curl through the proxy, trusting the test CA (and nothing else).
pcurl() { curl -s --max-time 20 --cacert "$T/tls/ca.crt" "$@"; }
hdr() { tr -d '\r' | sed -n "s/^$1: *//Ip" | head -n 1; }

curl_checks() {
	local d="tls: curl:" u=https://$NS_IP:$NP/v2/quinistry got direct
	check "$d GET /v2/ through the proxy, certificate verified" \
		[ "$(pcurl -o /dev/null -w '%{http_code}' "https://$NS_IP:$NP/v2/")" = 200 ]
	check "$d without the CA the certificate is refused (verification is on)" \
		[ "$(curl -s -o /dev/null -w '%{http_code}' "https://$NS_IP:$NP/v2/")" = 000 ]
	got=$(pcurl -I "$u/manifests/latest" | hdr Docker-Content-Digest)
	check "$d HEAD by tag gives Docker-Content-Digest $D" [ "$got" = "$D" ]
	got=$(pcurl -I "$u/manifests/latest" | hdr Content-Length)
	direct=$(curl -s -I "http://$NS_IP:$QP/v2/quinistry/manifests/latest" | hdr Content-Length)
	check "$d HEAD keeps Content-Length ($got, direct $direct)" [ "${got:-none}" = "$direct" ]
	got=$(pcurl -o "$T/layer.tar" -w '%{http_code}' "$u/blobs/$L")
	check "$d the layer through the proxy has digest $L" \
		[ "$got $(sha "$T/layer.tar")" = "200 $L" ]
	LSIZE=$(stat -c %s "$T/layer.tar")
	got=$(pcurl -r 0-99 -o /dev/null -D - "$u/blobs/$L" | tr -d '\r')
	check "$d Range 0-99 passes through: 206, Content-Range bytes 0-99/$LSIZE" \
		grep -qx "Content-Range: bytes 0-99/$LSIZE" <<<"$got"
	got=$(pcurl -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$L\"" "$u/blobs/$L")
	check "$d If-None-Match passes through: 304" [ "$got" = 304 ]
}

# ---------------------------------------------------------------- skopeo
skopeo_checks() {
	local d="tls: skopeo:" r=$NS_IP:$NP/quinistry got
	if ! have skopeo; then missing "$d inspect/copy" "skopeo missing"; return; fi
	got=$(timeout 60 skopeo inspect --tls-verify=false -f '{{.Digest}}' \
		"docker://$NS_IP:$QP/quinistry:latest" 2>"$T/err") || diag <"$T/err"
	check "$d inspect directly (plain HTTP) gives $D" [ "$got" = "$D" ]
	! timeout 60 skopeo inspect "docker://$r:latest" >/dev/null 2>"$T/err"
	check "$d inspect without the CA fails on the certificate" \
		grep -q 'x509\|certificate' "$T/err"
	got=$(timeout 60 skopeo inspect --cert-dir "$T/tls-ca" -f '{{.Digest}}' \
		"docker://$r:latest" 2>"$T/err") || diag <"$T/err"
	check "$d inspect --cert-dir CA through the proxy gives $D" [ "$got" = "$D" ]
	if timeout 60 skopeo copy -q --preserve-digests --src-cert-dir "$T/tls-ca" \
		--digestfile "$T/oci.digest" "docker://$r:latest" "oci:$T/oci:latest" \
		>"$T/err" 2>&1; then
		check "$d copy --preserve-digests through the proxy keeps $D" \
			[ "$(cat "$T/oci.digest")" = "$D" ]
		check "$d the copied layer and config keep their digests" \
			[ "$(sha "$T/oci/blobs/sha256/${L#sha256:}") $(sha \
				"$T/oci/blobs/sha256/${CFG#sha256:}")" = "$L $CFG" ]
	else
		diag <"$T/err"
		nok "$d copy --preserve-digests through the proxy"
	fi
}

# ---------------------------------------------------------------- podman
# shellcheck disable=SC2046 # pm prints a command line, split on purpose
podman_checks() {
	local d="tls: podman:" r=$NS_IP:$NP/quinistry:latest got
	if ! have podman; then missing "$d pull" "podman missing"; return; fi
	if ! have runc; then missing "$d pull" "runc missing"; return; fi
	PODMAN_OK=1
	mkdir -p "$T/podman1/tmp" "$T/podman2/tmp"
	! timeout 60 $(pm 1) pull -q "$r" >/dev/null 2>"$T/err"
	check "$d pull without the CA fails on the certificate" \
		grep -q 'x509\|certificate' "$T/err"
	# The CA as podman finds it in /etc/containers/certs.d/HOST:PORT/.
	if timeout 60 $(pm 2) pull -q --cert-dir "$T/certs.d/$NS_IP:$NP" "$r" \
		>/dev/null 2>"$T/err"; then
		got=$(timeout 30 $(pm 2) image inspect -f '{{.Digest}} {{.Id}}' "$r")
		check "$d pull with the CA in certs.d/$NS_IP:$NP gives $D, image ID the config digest" \
			[ "$got" = "$D ${CFG#sha256:}" ]
	else
		diag <"$T/err"
		nok "$d pull with the CA in certs.d/$NS_IP:$NP"
	fi
}

# ---------------------------------------------------------------- docker
docker_checks() {
	local d="tls: docker:" r=$NS_IP:$NP/quinistry:latest got
	docker_ready "$d pull" || return 0
	! timeout 60 docker pull "$r" >/dev/null 2>"$T/err"
	check "$d pull without the CA fails on the certificate" \
		grep -q 'x509\|certificate' "$T/err"
	DOCKER_CA_DIR=/etc/docker/certs.d/$NS_IP:$NP
	mkdir -p "$DOCKER_CA_DIR" && cp "$T/tls/ca.crt" "$DOCKER_CA_DIR/ca.crt"
	if timeout 60 docker pull "$r" >"$T/out" 2>&1; then
		got=$(sed -n 's/^Digest: *//p' "$T/out")
		check "$d pull with $DOCKER_CA_DIR/ca.crt reports $D" [ "$got" = "$D" ]
		got=$(docker image inspect -f '{{.Id}}' "$r" 2>/dev/null)
		check "$d image ID is the config digest" [ "$got" = "$CFG" ]
	else
		diag <"$T/out"
		nok "$d pull with $DOCKER_CA_DIR/ca.crt"
	fi
	docker rmi "$r" >/dev/null 2>&1
	rm -rf "$DOCKER_CA_DIR" && rmdir /etc/docker/certs.d /etc/docker 2>/dev/null
	check "$d $DOCKER_CA_DIR removed afterwards" [ ! -e "$DOCKER_CA_DIR" ]
	DOCKER_CA_DIR=
}

# nginx keeps its connections to quinistry open (upstream keepalive): the
# requests quinistry logged came over fewer connections than there were.
keepalive_check() {
	local reqs conns
	# Only nginx comes from 127.0.0.1 (the direct checks come over the veth).
	awk '$2 ~ /^127\.0\.0\.1:/ && $4 ~ /^\/v2\// { print $2 }' "$T/quinistry.log" \
		>"$T/upstream"
	reqs=$(wc -l <"$T/upstream")
	conns=$(sort -u "$T/upstream" | wc -l)
	check "tls: nginx reuses upstream connections ($reqs requests over $conns connections)" \
		[ "$conns" -lt "$reqs" ]
}

# ---------------------------------------------------------------- main
suite_needs tls: curl openssl nginx ip sha256sum
if [ "$(id -u)" != 0 ]; then
	missing "tls: suite" "not root: cannot make the network namespace"
	exit 0
fi
make_netns || { nok "tls: network namespace $NS with a veth pair"; exit 1; }
if make_certs >"$T/openssl.out" 2>&1; then
	ok "tls: openssl makes a CA and a server certificate for $NS_IP, 127.0.0.1, localhost"
else
	diag <"$T/openssl.out"
	nok "tls: openssl makes a CA and a server certificate"
	exit 1
fi
start_quinistry || { nok "tls: quinistry starts in the namespace"; exit 1; }
ok "tls: quinistry in the namespace on port $QP, docker manifest $D"
NP=$(free_port) || { nok "tls: free port"; exit 1; }
mkdir -p "$T/tls-ca" "$T/certs.d/$NS_IP:$NP" &&
	cp "$T/tls/ca.crt" "$T/tls-ca/" && cp "$T/tls/ca.crt" "$T/certs.d/$NS_IP:$NP/"
check "tls: nginx with $README's config serves https://$NS_IP:$NP" start_nginx || exit 1
setup_daemons
curl_checks
skopeo_checks
podman_checks
docker_checks
keepalive_check
exit 0
