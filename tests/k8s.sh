#!/bin/bash
# Kubernetes suite.
#  1. k8s/*.yaml against the Kubernetes API schema and against the binary
#     (k8s/validate/validate.js; its npm dependencies are installed here).
#  2. What a node does with parent.yaml and child.yaml, replayed with ctr on
#     containerd: import `quinistry export` (as `kind load` does), run
#     the parent on the parent's hostPort, pull the child image from it over
#     plain HTTP (what the kubelet does for localhost:5000/...), run the child
#     on the child's hostPort, compare digests, time the probe, stop both.
# Ports, image names, user, probe path and timeout come from the manifests
# (validate.js --facts-out), never from this file.
#
# containerd: the one tests/daemons.sh started (its env file, default
# /tmp/qt-daemons/env, names CONTAINERD_ADDRESS), else a private one started
# here with a temporary config. Images live in namespaces of their own,
# removed at the end. With CI=true a missing tool is `not ok`, else `skip`.
# K8S_KEEP_TMP=1 keeps the work directory (logs, facts) for a look.
set -u

cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh || exit 1
# tests/daemons.sh's functions (its way to start a containerd, and
# qt_umount_under) without running a command.
. tests/daemons.sh '' || exit 1
MANIFESTS="k8s/parent.yaml k8s/child.yaml k8s/registry.yaml"
VALIDATE_DIR=k8s/validate

NS=qt-k8s-$$          # the node's image store (k8s.io on a real node)
NS_EMPTY=qt-k8s-e-$$   # an image store without the side-loaded blobs
PARENT=qt-k8s-parent-$$
CHILD=qt-k8s-child-$$
OWN_CONTAINERD_PID=
CTR_ADDR=

ctr_() { timeout 60 ctr -a "$CTR_ADDR" -n "$NS" "$@"; }
ctr_empty() { timeout 60 ctr -a "$CTR_ADDR" -n "$NS_EMPTY" "$@"; }

k8s_cleanup() {
	if [ -n "$CTR_ADDR" ]; then
		local c
		for c in "$CHILD" "$PARENT"; do
			ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1
			ctr_ tasks rm -f "$c" >/dev/null 2>&1
			ctr_ containers rm "$c" >/dev/null 2>&1
		done
		local ns
		for ns in "$NS" "$NS_EMPTY"; do
			for c in $(timeout 30 ctr -a "$CTR_ADDR" -n "$ns" images ls -q 2>/dev/null); do
				timeout 30 ctr -a "$CTR_ADDR" -n "$ns" images rm --sync "$c" >/dev/null 2>&1
			done
			timeout 30 ctr -a "$CTR_ADDR" namespaces rm "$ns" >/dev/null 2>&1
		done
	fi
	if [ -n "$OWN_CONTAINERD_PID" ]; then
		qt_d_kill_pidfile "$T/containerd/containerd.pid" 5
		qt_umount_under "$T"
	fi
}
at_exit k8s_cleanup
[ -n "${K8S_KEEP_TMP:-}" ] && KEEP_TMP=1

# ------------------------------------------------------------ 1. manifests

have_facts=0
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing "k8s manifests: schema validation needs node and npm" "tool missing"
else
	# Install (or bring up to date) the pinned validator dependencies.
	lock=$VALIDATE_DIR/package-lock.json
	stamp=$VALIDATE_DIR/node_modules/.package-lock.json
	if [ -f "$stamp" ] && [ ! "$lock" -nt "$stamp" ]; then
		npm_rc=0
	else
		(cd "$VALIDATE_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1
		npm_rc=$?
		[ $npm_rc = 0 ] || tail -n 20 "$T/npm.log" | diag
	fi
	check_status $npm_rc "k8s validator dependencies installed (npm ci in $VALIDATE_DIR)"

	if [ ! -x "$Q" ]; then
		nok "k8s manifests: $Q is not built (run make)"
	elif ! "$Q" --help >"$T/help.txt" 2>&1; then
		nok "k8s manifests: $Q --help failed"
	elif [ $npm_rc = 0 ]; then
		# shellcheck disable=SC2086
		timeout 120 node "$VALIDATE_DIR/validate.js" --help-text "$T/help.txt" \
			--facts-out "$T/facts" $MANIFESTS >"$T/validate.out" 2>"$T/validate.err"
		rc=$?
		cat "$T/validate.out"
		if [ $rc != 0 ] && ! grep -q '^not ok - ' "$T/validate.out"; then
			tail -n 20 "$T/validate.err" | diag
			nok "k8s validator exited $rc"
		fi
		[ -s "$T/facts" ] && have_facts=1
	fi
fi

# ------------------------------------------------------------ 2. node demo

demo_tools_ok() {
	local t
	for t in ctr containerd runc containerd-shim-runc-v2 curl; do
		command -v "$t" >/dev/null 2>&1 || { missing "k8s node demo: $t" "tool missing"; return 1; }
	done
	if [ "$(id -u)" != 0 ]; then
		missing "k8s node demo: needs root for containerd" "not root"
		return 1
	fi
	# The image holds nothing but the binary: a dynamically linked build
	# (the ASan one) cannot run in it, so the demo does not apply to it.
	if ! is_static; then
		skip "k8s node demo: $Q is dynamically linked (an image of it cannot run)"
		return 1
	fi
	if [ $have_facts = 0 ]; then
		nok "k8s node demo: no values from the manifests (validation did not run)"
		return 1
	fi
	return 0
}

# Use the containerd of tests/daemons.sh if it answers, else start one.
find_containerd() {
	local envfile=${QT_DAEMONS_ENV:-/tmp/qt-daemons/env} addr=
	if [ -r "$envfile" ]; then
		addr=$(sed -n 's/^CONTAINERD_ADDRESS=//p' "$envfile" | tail -n 1)
	fi
	if [ -n "$addr" ] && qt_d_containerd_ok "$addr"; then
		CTR_ADDR=$addr
		ok "k8s node demo: using containerd at $addr (from $envfile)"
		return 0
	fi
	# A private one, started the way tests/daemons.sh starts its own (its
	# messages are ours to give: the log below, then not ok).
	local d=$T/containerd started=0
	QT_DAEMONS_DIR=$d QT_DAEMONS_QUIET=1 qt_d_start_containerd 2>/dev/null && started=1
	OWN_CONTAINERD_PID=$(cat "$d/containerd.pid" 2>/dev/null)
	if [ $started = 1 ] && [ -n "$OWN_CONTAINERD_PID" ]; then
		CTR_ADDR=$d/containerd.sock
		ok "k8s node demo: started a private containerd (pid $OWN_CONTAINERD_PID)"
		return 0
	fi
	tail -n 20 "$d/containerd.log" | diag
	nok "k8s node demo: containerd did not start"
	return 1
}

# port-free PORT: nothing listens on TCP PORT (any address).
port_free() {
	if command -v ss >/dev/null 2>&1; then
		[ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
	else
		! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# wait_probe PORT: GET the probe path until it answers (max 10 s).
wait_probe() {
	local i=0
	while [ $i -lt 100 ]; do
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1$K8S_PROBE_PATH" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# task_pid NAME: host PID of the container's init process.
task_pid() { ctr_ tasks ls 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }

# run_node_copy NAME IMAGE PORT LOG: what the kubelet does with the pod spec,
# as far as ctr can say it: host network (the CNI portmap plugin's hostPort
# becomes the PORT env here), read-only root file system, all capabilities
# dropped, no new privileges (ctr's default), the runtime's default seccomp
# profile, the memory and CPU limits of the manifest. The user is the image's
# own (ctr 1.6 run has no --user); the check below reads it from /proc.
# ctr 1.6 knows no "--cap-drop ALL": drop each capability of its default set.
CTR_DEFAULT_CAPS="CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID
	SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE"
# ctr has no way to append args to the entrypoint: give both ($ENTRYPOINT
# from the image config, the args from the manifest).
run_node_copy() {
	local c drops=()
	for c in $CTR_DEFAULT_CAPS; do drops+=(--cap-drop "CAP_$c"); done
	# shellcheck disable=SC2086
	ctr_ run -d --net-host --read-only --seccomp "${drops[@]}" \
		--memory-limit "$K8S_MEM_LIMIT_BYTES" --cpus "$K8S_CPU_LIMIT" \
		--env "PORT=$3" --log-uri "file://$4" "$2" "$1" $ENTRYPOINT $K8S_ARGS \
		>"$T/run-$1.out" 2>&1
}

# pod_checks NAME PORT LOG WHAT
pod_checks() {
	local name=$1 port=$2 log=$3 what=$4 pid t code
	if ! wait_probe "$port"; then
		cat "$log" "$T/run-$name.out" 2>/dev/null | tail -n 20 | diag
		nok "k8s node demo: $what answers on 127.0.0.1:$port"
		return 1
	fi
	ok "k8s node demo: $what answers on 127.0.0.1:$port"

	# The probe as the kubelet sends it, timed against its timeoutSeconds.
	t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time "$K8S_PROBE_TIMEOUT" \
		"http://127.0.0.1:$port$K8S_PROBE_PATH")
	code=${t%% *}
	[ "$code" = 200 ]
	check_status $? "k8s node demo: $what GET $K8S_PROBE_PATH -> $code in ${t#* }s (probe timeout ${K8S_PROBE_TIMEOUT}s)"

	pid=$(task_pid "$name")
	if [ -z "$pid" ] || [ ! -r "/proc/$pid/status" ]; then
		nok "k8s node demo: $what process found"
		return 1
	fi
	local uid gid capeff capbnd nnp rss rootopts
	uid=$(proc_field "$pid" Uid) gid=$(proc_field "$pid" Gid)
	capeff=$(proc_field "$pid" CapEff) capbnd=$(proc_field "$pid" CapBnd)
	nnp=$(proc_field "$pid" NoNewPrivs) rss=$(proc_field "$pid" VmRSS)
	rootopts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" 2>/dev/null | tail -n 1)
	[ "$uid:$gid" = "$K8S_RUN_AS" ]
	check_status $? "k8s node demo: $what runs as $uid:$gid (manifests: runAsUser:runAsGroup $K8S_RUN_AS)"
	[ "$capeff" = 0000000000000000 ] && [ "$capbnd" = 0000000000000000 ] && [ "$nnp" = 1 ] &&
		case ",$rootopts," in *,ro,*) true ;; *) false ;; esac
	check_status $? "k8s node demo: $what has no capabilities (CapEff $capeff, CapBnd $capbnd), NoNewPrivs $nnp, root mounted $rootopts"
	[ -n "$rss" ] && [ $((rss * 1024)) -lt "$K8S_MEM_REQUEST_BYTES" ]
	check_status $? "k8s node demo: $what idle RSS ${rss:-?} KiB is below the memory request ($K8S_MEM_REQUEST_BYTES bytes)"
	[ "$name" = "$PARENT" ] && [ -n "$rss" ] && memory_check "$pid" "$port" "$rss" "$what"
	return 0
}

# memory_check PID PORT IDLE_RSS_KIB WHAT: hold connections that each carry
# all but the end of a maximal request head (the server buffers the head:
# its worst case per connection), measure the RSS, extrapolate to the
# manifest's --max-conns and compare with the memory limit. The container
# runs under that limit, so it must also survive the measurement.
memory_check() {
	local pid=$1 port=$2 idle=$3 what=$4 n=800 head i=0 loaded per total
	head=$(limit MAX_HEAD 8192)
	node "$VALIDATE_DIR/holdconns.js" "$port" "$n" $((head - 100)) 8 >"$T/hold.out" 2>&1 &
	local hold=$!
	while [ $i -lt 60 ] && ! grep -q '^ready\|^failed' "$T/hold.out"; do sleep 0.1; i=$((i + 1)); done
	sleep 0.3
	loaded=$(proc_field "$pid" VmRSS)
	kill "$hold" 2>/dev/null
	wait "$hold" 2>/dev/null
	if ! grep -q "^ready $n" "$T/hold.out" || [ -z "$loaded" ]; then
		tail -n 3 "$T/hold.out" | diag
		nok "k8s node demo: $what holds $n half-sent request heads under its memory limit"
		return
	fi
	per=$(((loaded - idle) / n))
	total=$((idle + per * K8S_MAX_CONNS))
	[ $((total * 1024)) -lt "$K8S_MEM_LIMIT_BYTES" ] && wait_probe "$port"
	check_status $? "k8s node demo: $what RSS $loaded KiB with $n half-sent ${head}-byte heads: ${per} KiB each, so ${total} KiB at --max-conns $K8S_MAX_CONNS < limit $((K8S_MEM_LIMIT_BYTES / 1024)) KiB"
}

# stop_checks NAME WHAT: SIGTERM, as the kubelet sends it; must exit 0 well
# within terminationGracePeriodSeconds.
stop_check() {
	local name=$1 what=$2 i=0 st start end ms rc
	start=$(date +%s%N)
	ctr_ tasks kill -s SIGTERM "$name" >/dev/null 2>&1
	while [ $i -lt $((K8S_GRACE * 20)) ]; do
		st=$(ctr_ tasks ls 2>/dev/null | awk -v n="$name" '$1 == n { print $3 }')
		[ "$st" = STOPPED ] || [ -z "$st" ] && break
		sleep 0.05
		i=$((i + 1))
	done
	end=$(date +%s%N)
	ms=$(((end - start) / 1000000))
	ctr_ tasks rm "$name" >/dev/null 2>&1
	rc=$?
	[ "$st" = STOPPED ] && [ $rc = 0 ] && [ $ms -lt $((K8S_GRACE * 1000)) ]
	check_status $? "k8s node demo: $what exits with status $rc ${ms} ms after SIGTERM (grace ${K8S_GRACE}s)"
	ctr_ containers rm "$name" >/dev/null 2>&1
}

log_digest() { sed -n "s/^ *$2 *\(sha256:[0-9a-f]\{64\}\).*/\1/p" "$1" | head -n 1; }

node_demo() {
	demo_tools_ok || return 0
	# shellcheck disable=SC1091
	. "$T/facts"
	find_containerd || return 0

	local parent_port=$K8S_PARENT_HOSTPORT child_port=$K8S_CHILD_HOSTPORT child_image=$K8S_CHILD_IMAGE
	if ! port_free "$parent_port"; then
		# Keep the demo honest: the child image must name the port in use.
		local p
		for p in $(shuf -i 20000-29999 -n 20 2>/dev/null || seq 20000 20019); do
			port_free "$p" && { parent_port=$p; break; }
		done
		child_image=${K8S_CHILD_IMAGE/localhost:$K8S_PARENT_HOSTPORT\//localhost:$parent_port/}
		echo "# port $K8S_PARENT_HOSTPORT is taken here; the parent uses $parent_port and the child pulls $child_image"
	fi
	if ! port_free "$child_port"; then
		for p in $(shuf -i 30000-39999 -n 20 2>/dev/null || seq 30000 30019); do
			port_free "$p" && [ "$p" != "$parent_port" ] && { child_port=$p; break; }
		done
		echo "# port $K8S_CHILD_HOSTPORT is taken here; the child uses $child_port"
	fi

	# Side-loading, as `ctr -n k8s.io images import` does on a node.
	if ! "$Q" export -o "$T/quinistry.tar" 2>"$T/export.err"; then
		tail -n 5 "$T/export.err" | diag
		nok "k8s node demo: quinistry export"
		return 0
	fi
	ok "k8s node demo: quinistry export ($(wc -c <"$T/quinistry.tar") bytes)"
	local cfg
	mkdir -p "$T/x"
	tar -xf "$T/quinistry.tar" -C "$T/x" manifest.json 2>/dev/null &&
		cfg=$(node -p 'require(process.argv[1])[0].Config' "$T/x/manifest.json" 2>/dev/null) &&
		tar -xf "$T/quinistry.tar" -C "$T/x" "$cfg" 2>/dev/null &&
		ENTRYPOINT=$(node -p '(JSON.parse(require("fs").readFileSync(process.argv[1])).config.Entrypoint || []).join(" ")' "$T/x/$cfg" 2>/dev/null)
	if [ -z "${ENTRYPOINT:-}" ]; then
		nok "k8s node demo: the exported image config has an Entrypoint"
		return 0
	fi
	# The kubelet looks "quinistry:latest" up as docker.io/library/quinistry:latest.
	local ref=docker.io/library/$K8S_PARENT_IMAGE
	ctr_ images import "$T/quinistry.tar" >"$T/import.out" 2>&1
	local imported
	imported=$(ctr_ images ls 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')
	if [ -z "$imported" ]; then
		tail -n 5 "$T/import.out" | diag
		ctr_ images ls 2>&1 | diag
		nok "k8s node demo: ctr images import makes $ref"
		return 0
	fi
	ok "k8s node demo: ctr images import makes $ref ($imported)"

	# Generation 1 (parent.yaml, imagePullPolicy: Never).
	local plog=$T/parent.log clog=$T/child.log
	if ! run_node_copy "$PARENT" "$ref" "$parent_port" "$plog"; then
		tail -n 10 "$T/run-$PARENT.out" | diag
		nok "k8s node demo: ctr run the parent"
		return 0
	fi
	pod_checks "$PARENT" "$parent_port" "$plog" "parent (generation 1)" || return 0
	local p_docker p_oci p_config
	p_docker=$(log_digest "$plog" 'docker manifest')
	p_oci=$(log_digest "$plog" 'oci manifest')
	p_config=$(log_digest "$plog" 'config')
	[ -n "$p_docker" ] && { [ "$imported" = "$p_docker" ] || [ "$imported" = "$p_oci" ]; }
	check_status $? "k8s node demo: the imported image is the one the parent serves (docker $p_docker, oci $p_oci)"

	# Generation 2 (child.yaml): the pull the kubelet makes from localhost.
	if ! ctr_ images pull --plain-http "$child_image" >"$T/pull.out" 2>&1; then
		tail -n 10 "$T/pull.out" | diag
		nok "k8s node demo: ctr images pull --plain-http $child_image"
		return 0
	fi
	ok "k8s node demo: ctr images pull --plain-http $child_image"
	local pulled pulled_config
	pulled=$(ctr_ images ls 2>/dev/null | awk -v r="$child_image" '$1 == r { print $3 }')
	pulled_config=$(ctr_ content get "$pulled" 2>/dev/null | sed -n 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p')
	[ -n "$pulled" ] && { [ "$pulled" = "$p_docker" ] || [ "$pulled" = "$p_oci" ]; }
	check_status $? "k8s node demo: pulled manifest $pulled is one the parent announced"
	[ -n "$pulled_config" ] && [ "$pulled_config" = "$p_config" ]
	check_status $? "k8s node demo: pulled config (image ID) ${pulled_config:-?} = parent's $p_config"
	# The node already holds the blobs (side-loaded), so only the manifest
	# travels; that is what happens on a real node too.
	grep -q " GET /v2/quinistry/manifests/$pulled 200 " "$plog"
	check_status $? "k8s node demo: the parent's log shows the pull's GET of manifest $pulled"

	# The same pull into an image store that lacks the blobs: all of it
	# must come from the parent.
	local before after
	before=$(wc -l <"$plog")
	if ctr_empty images pull --plain-http "$child_image" >"$T/pull-empty.out" 2>&1 &&
		[ "$(ctr_empty images ls 2>/dev/null | awk -v r="$child_image" '$1 == r { print $3 }')" = "$pulled" ]; then
		after=$(tail -n +$((before + 1)) "$plog")
		grep -q " GET /v2/quinistry/blobs/$p_config 20[06] " <<<"$after" &&
			grep -v "$p_config" <<<"$after" | grep -q " GET /v2/quinistry/blobs/sha256:[0-9a-f]* 20[06] "
		check_status $? "k8s node demo: a pull into an empty image store fetches config and layer blobs from the parent"
	else
		tail -n 10 "$T/pull-empty.out" | diag
		nok "k8s node demo: a pull into an empty image store fetches config and layer blobs from the parent"
	fi

	if ! run_node_copy "$CHILD" "$child_image" "$child_port" "$clog"; then
		tail -n 10 "$T/run-$CHILD.out" | diag
		nok "k8s node demo: ctr run the child"
		return 0
	fi
	pod_checks "$CHILD" "$child_port" "$clog" "child (generation 2)" || return 0
	local c_docker served
	c_docker=$(log_digest "$clog" 'docker manifest')
	served=$(curl -s -I --max-time 5 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:$child_port/v2/quinistry/manifests/latest" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
	[ -n "$c_docker" ] && [ "$c_docker" = "$p_docker" ] && [ "$served" = "$p_docker" ]
	check_status $? "k8s node demo: the child serves the parent's manifest digest ($served)"

	stop_check "$CHILD" "child"
	stop_check "$PARENT" "parent"
}

node_demo
exit 0
