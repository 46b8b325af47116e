#!/usr/bin/env bash
# bench/bench.sh: quinistry vs nginx on loopback, same bytes, same paths, same headers.
#
# Usage: bench/bench.sh [-d DURATION] [-r ROUNDS] [-o OUT.md] [-h]
# Environment (defaults in brackets):
#   DURATION [3s]     length of each load run (wrk syntax: 5s, 1m; loadgen gets seconds)
#   WARMUP [1s]       warm-up run per server before measuring
#   ROUNDS [5]        rounds per metric (quinistry, nginx, then nginx, quinistry, ...); median reported
#   CONNS [64]        keep-alive connections for throughput runs
#   LAT_CONNS [256]   connections for the latency run
#   IDLE_CONNS [10000] idle keep-alive connections held during the idle run
#   COLD_RUNS [20]    starts per server for the cold-start median
#   RET_CLIENTS [20] RET_SILENCE [1.6] RET_ROUNDS [3]   returning clients:
#                     each sends GET /v2/ after RET_SILENCE s of silence,
#                     RET_ROUNDS times, while CONNS connections keep the
#                     server busy (loadgen returning)
#   ONLY [all]        measure only these metrics, comma-separated, of:
#                     v2 manifest head headlog layer close lat ret idle cold
#   SERVER_CPU [1] CLIENT_CPU [0]   taskset pinning
#   LOOPBACK_RPS [auto] 1: while measuring, steer all TCP receive work on lo
#                     to the server's core (RPS), so that the server, not
#                     the load generator, runs out of CPU; needs root, the
#                     old setting is put back on exit.  0: kernel default.
#                     auto: 1 when it can be set.
#   QUINISTRY [./quinistry]  NGINX [nginx from PATH]
#   BENCH_OUT [bench/last-run.md]   Markdown copy of the result table
# Needs: nginx (Debian nginx-light), wrk, curl, gcc, taskset (util-linux).
# shellcheck disable=SC2046 # pid lists are split on purpose
set -u
set -o pipefail

case $0 in */*) cd "${0%/*}/.." || exit 1 ;; *) cd .. || exit 1 ;; esac

while getopts "d:r:o:h" opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    o) BENCH_OUT=$OPTARG ;;
    h) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done

DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
LAT_CONNS=${LAT_CONNS:-256}
IDLE_CONNS=${IDLE_CONNS:-10000}
COLD_RUNS=${COLD_RUNS:-20}
RET_CLIENTS=${RET_CLIENTS:-20}
RET_SILENCE=${RET_SILENCE:-1.6}
RET_ROUNDS=${RET_ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
QUINISTRY=${QUINISTRY:-./quinistry}
BENCH_OUT=${BENCH_OUT:-bench/last-run.md}

DOCKER_MT=application/vnd.docker.distribution.manifest.v2+json
OCI_MT=application/vnd.oci.image.manifest.v1+json
REPO=quinistry

die() { echo "bench: $*" >&2; exit 1; }

# ---- tools ---------------------------------------------------------------
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] || ! command -v wrk >/dev/null; then
    echo "bench: nginx and wrk are needed; install them with:" >&2
    echo "apt-get install nginx-light wrk" >&2
    exit 1
fi
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
for t in curl gcc taskset timeout sha256sum awk; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done

# seconds from a wrk-style duration (5s, 5, 1m)
secs() {
    case $1 in
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
    esac
}
DUR_S=$(secs "$DURATION")
WARM_S=$(secs "$WARMUP")
case "$DUR_S$WARM_S$ROUNDS$CONNS$LAT_CONNS$IDLE_CONNS$COLD_RUNS$RET_CLIENTS$RET_ROUNDS" in
*[!0-9]*) die "DURATION/WARMUP must be whole seconds (5s, 1m); counts must be integers" ;;
esac
case $RET_SILENCE in '' | *[!0-9.]*) die "RET_SILENCE must be seconds (1.6)" ;; esac
RUN_LIMIT=$(( DUR_S + 30 )) # hard bound on any single load run

NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then
    echo "bench: warning: only $NCPU CPU; server and client share it" >&2
    SERVER_CPU=0 CLIENT_CPU=0
fi

# Loopback receive steering. On loopback the kernel runs the receiving
# end's TCP work inside the sender's system call, on the sender's core: by
# default the client's core does the server's receive work (handshakes,
# requests, the server's half of each close). With one core for the client,
# the load generator then runs out of CPU before the server does (measured,
# new connection per request: loadgen 2.9 s of CPU per 3 s run while
# quinistry's core was ~50% busy and nginx's ~70%), and the run measures the
# client. RPS (Receive Packet Steering, Documentation/networking/scaling.rst
# in the kernel) with the server's core as the only target queues every
# packet that arrives on lo to that core, so the server's core does all the
# receive work (its own, and the client's, which it already did before) and
# the client's core only the client's system calls: the server is the
# bottleneck, which is what a server benchmark should measure. It costs an
# inter-processor interrupt per batch of steered packets, so absolute rates
# are lower than without it; the ratios are what the targets are about.
# (A run killed with SIGKILL cannot put it back: the header line says what
# it was; echo that value > /sys/class/net/lo/queues/rx-0/rps_cpus.)
LOOPBACK_RPS=${LOOPBACK_RPS:-auto}
RPS_FILE=/sys/class/net/lo/queues/rx-0/rps_cpus
RPS_OLD=''
rps_restore() {
    [ -n "$RPS_OLD" ] || return 0
    echo "$RPS_OLD" >"$RPS_FILE"
    RPS_OLD=''
}
RPS_STATE="kernel default (no RPS on lo): the receiving end's TCP work runs on the sender's core"
rps_enable() { # called once the exit trap that puts the setting back is set
    [ "$LOOPBACK_RPS" != 0 ] && [ "$NCPU" -ge 2 ] || return 0
    if [ -w "$RPS_FILE" ] && RPS_OLD=$(cat "$RPS_FILE") &&
        printf '%x\n' $(( 1 << SERVER_CPU )) >"$RPS_FILE"; then
        RPS_STATE="RPS on lo to CPU $SERVER_CPU (rps_cpus $(cat "$RPS_FILE"), was $RPS_OLD; put back after the run): all TCP receive work runs on the server's core"
    else
        rps_restore 2>/dev/null
        [ "$LOOPBACK_RPS" = 1 ] && die "LOOPBACK_RPS=1 needs root (writes $RPS_FILE)"
        echo "bench: note: cannot set RPS on lo (not root?); measuring with the kernel default" >&2
    fi
}

# file descriptors: idle run needs IDLE_CONNS in the client and in the server
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
ulimit -n "$HARD_NOFILE" 2>/dev/null
if [ "$HARD_NOFILE" -lt $(( IDLE_CONNS + 1000 )) ]; then
    IDLE_CONNS=$(( HARD_NOFILE - 1000 ))
    echo "bench: warning: ulimit -Hn is $HARD_NOFILE; idle connections lowered to $IDLE_CONNS" >&2
fi
MAXCONN=$(( IDLE_CONNS + 2000 ))

# ---- temp dir and cleanup ------------------------------------------------
T=$(mktemp -d /tmp/quinistry-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$T" # nginx workers run as nobody and must read the docroot
QPID='' QLPID='' NPID='' IDLEPID=''
cleanup() {
    trap - EXIT INT TERM
    rps_restore
    exec 7>&-
    local p
    for p in $IDLEPID $QPID $QLPID $NPID; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $IDLEPID $QPID $QLPID $NPID; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pin_cli() { timeout -k 5 "$RUN_LIMIT" taskset -c "$CLIENT_CPU" "$@"; }
# wait_for TRIES FILE SED PID: poll FILE every 50 ms, TRIES times at most,
# until the sed -n script SED prints something; print that. Gives up early
# when PID (the process that writes FILE) has died.
wait_for() {
    local v
    for _ in $(seq "$1"); do
        v=$(sed -n "$3" "$2")
        [ -n "$v" ] && { echo "$v"; return 0; }
        kill -0 "$4" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}

# ---- build ---------------------------------------------------------------
if [ ! -x "$QUINISTRY" ]; then
    echo "bench: building quinistry (make)"
    make >/dev/null || die "make failed"
fi
[ -x "$QUINISTRY" ] || die "$QUINISTRY not found"
LOADGEN=$T/loadgen
gcc -O2 -std=gnu99 -Wall -Wextra -Werror -o "$LOADGEN" bench/loadgen.c || die "cannot build bench/loadgen.c"

# ---- start quinistry -----------------------------------------------------
# (taskset execs the server, so $! is the server's pid)
taskset -c "$SERVER_CPU" "$QUINISTRY" -q -l 127.0.0.1:0 -c "$MAXCONN" </dev/null >/dev/null 2>"$T/q.err" &
QPID=$!
QADDR=$(wait_for 100 "$T/q.err" 's/.*listening on //p' "$QPID") ||
    { cat "$T/q.err" >&2; die "quinistry did not start"; }
QPORT=${QADDR##*:}
hexof() { sed -n "s/^ *$1 *sha256:\([0-9a-f]\{64\}\).*/sha256:\1/p" "$T/q.err" | head -1; }
DOCKER_DG=$(hexof 'docker manifest')
OCI_DG=$(hexof 'oci manifest')
CONFIG_DG=$(hexof config)
LAYER_DG=$(hexof layer)
LAYER_SIZE=$(sed -n 's/^ *layer .*(\([0-9]*\) bytes).*/\1/p' "$T/q.err" | head -1)
[ -n "$DOCKER_DG" ] && [ -n "$CONFIG_DG" ] && [ -n "$LAYER_DG" ] ||
    { cat "$T/q.err" >&2; die "cannot read digests from quinistry's start-up lines"; }
QVERSION=$(head -1 "$T/q.err" | sed 's/:.*//')
# The same binary with its request log on (no -q), the log to /dev/null:
# the headlog row, against nginx's access_log (below)
QLPORT=$("$LOADGEN" freeport)
taskset -c "$SERVER_CPU" "$QUINISTRY" -l "127.0.0.1:$QLPORT" -c "$MAXCONN" </dev/null >/dev/null 2>&1 &
QLPID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$QLPORT/v2/" && break
    sleep 0.05
done

MAN=/v2/$REPO/manifests/latest
LAYER=/v2/$REPO/blobs/$LAYER_DG

# ---- fetch the exact bytes and headers from quinistry --------------------
# paths: URL path | Accept | file name in the nginx root
PATHS=(
    "/v2/||v2.json"
    "$MAN|$DOCKER_MT|v2/$REPO/manifests/latest"
    "/v2/$REPO/manifests/$DOCKER_DG|$DOCKER_MT|v2/$REPO/manifests/$DOCKER_DG"
    "/v2/$REPO/blobs/$CONFIG_DG||v2/$REPO/blobs/$CONFIG_DG"
    "$LAYER||v2/$REPO/blobs/$LAYER_DG"
)
[ -n "$OCI_DG" ] && PATHS+=("/v2/$REPO/manifests/$OCI_DG|$OCI_MT|v2/$REPO/manifests/$OCI_DG")

fetch() { # fetch PORT PATH ACCEPT OUTPREFIX [METHOD]
    local a=()
    [ -n "$3" ] && a=(-H "Accept: $3")
    [ "${5:-GET}" = HEAD ] && a+=(-I)
    curl -s --max-time 10 "${a[@]}" -D "$4.h" -o "$4.b" "http://127.0.0.1:$1$2" ||
        die "curl http://127.0.0.1:$1$2 failed"
    tr -d '\r' <"$4.h" >"$4.hh"
}
hval() { # hval HEADERFILE NAME -> value (case-insensitive name)
    awk -v n="$2" 'BEGIN{n=tolower(n)} { i=index($0,":"); if (i && tolower(substr($0,1,i-1))==n) { v=substr($0,i+1); sub(/^[ \t]+/,"",v); print v; exit } }' "$1"
}

mkdir -p "$T/root/v2/$REPO/manifests" "$T/root/v2/$REPO/blobs" "$T/logs"
LOCS=
i=0
for e in "${PATHS[@]}"; do
    IFS='|' read -r p acc f <<<"$e"
    i=$((i + 1))
    fetch "$QPORT" "$p" "$acc" "$T/q$i"
    st=$(head -1 "$T/q$i.hh" | awk '{print $2}')
    [ "$st" = 200 ] || die "quinistry: GET $p -> $st"
    cp "$T/q$i.b" "$T/root/$f"
    ct=$(hval "$T/q$i.hh" Content-Type)
    loc="        location = $p {\n"
    [ "$p" = /v2/ ] && loc+="            try_files /v2.json =404;\n"
    loc+="            default_type \"$ct\";\n"
    # copy every other header quinistry sends, except the ones nginx makes itself
    while IFS= read -r line; do
        name=${line%%:*}
        val=${line#*:}
        val=${val# }
        case $(echo "$name" | tr 'A-Z' 'a-z') in
        http/* | '' | date | content-length | content-type | connection | keep-alive | server | \
            accept-ranges | last-modified | transfer-encoding | content-range) continue ;;
        esac
        case $val in *"'"*) die "header value with a quote: $line" ;; esac
        loc+="            add_header $name '$val';\n"
    done <"$T/q$i.hh"
    LOCS+="$loc        }\n"
done

# ---- nginx config ----------------------------------------------------------
NPORT=$("$LOADGEN" freeport)
NLPORT=$("$LOADGEN" freeport)
ncfg() { # ncfg PORT PIDFILE LOGPORT
    cat <<EOF
worker_processes 1;
daemon off;
pid $2;
error_log $T/logs/error.log;
worker_rlimit_nofile $HARD_NOFILE;
events { worker_connections $MAXCONN; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60s;
    keepalive_requests 1000000000;
    server_tokens off;
    etag off;
    open_file_cache max=64 inactive=600s;
    client_body_temp_path $T/logs/body;
    proxy_temp_path $T/logs/proxy;
    fastcgi_temp_path $T/logs/fastcgi;
    uwsgi_temp_path $T/logs/uwsgi;
    scgi_temp_path $T/logs/scgi;
    types { }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$1;
        root $T/root;
$(printf "%b" "$LOCS")
        location / { return 404; }
    }
    server { # the headlog row: the default access log, to /dev/null
        listen 127.0.0.1:$3;
        access_log /dev/null;
        root $T/root;
$(printf "%b" "$LOCS")
        location / { return 404; }
    }
}
EOF
}
ncfg "$NPORT" "$T/logs/nginx.pid" "$NLPORT" >"$T/nginx.conf"
COLD_NPORT=$("$LOADGEN" freeport)
ncfg "$COLD_NPORT" "$T/logs/nginx-cold.pid" "$("$LOADGEN" freeport)" >"$T/nginx-cold.conf"
"$NGINX" -t -q -p "$T" -c "$T/nginx.conf" -e "$T/logs/error.log" || die "nginx config test failed"
taskset -c "$SERVER_CPU" "$NGINX" -p "$T" -c "$T/nginx.conf" -e "$T/logs/error.log" </dev/null >/dev/null 2>>"$T/logs/error.log" &
NPID=$!
NWPID=
for _ in $(seq 100); do
    NWPID=$(pgrep -P "$NPID" | head -1)
    [ -n "$NWPID" ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$NPORT/v2/" && break
    kill -0 "$NPID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$NWPID" ] || { cat "$T/logs/error.log" >&2; die "nginx did not start"; }

# ---- verify both serve the same bytes and headers ----------------------------
KEYH="Content-Type Content-Length Docker-Content-Digest ETag Docker-Distribution-API-Version"
i=0
for e in "${PATHS[@]}"; do
    IFS='|' read -r p acc f <<<"$e"
    i=$((i + 1))
    for m in GET HEAD; do
        fetch "$QPORT" "$p" "$acc" "$T/cq" $m
        fetch "$NPORT" "$p" "$acc" "$T/cn" $m
        bad=
        sq=$(head -1 "$T/cq.hh" | awk '{print $2}')
        sn=$(head -1 "$T/cn.hh" | awk '{print $2}')
        [ "$sq" = 200 ] && [ "$sn" = 200 ] || bad+=" status $sq/$sn"
        if [ $m = GET ]; then # (curl -I puts the head in the body file)
            hq=$(sha256sum <"$T/cq.b" | cut -c1-12)
            hn=$(sha256sum <"$T/cn.b" | cut -c1-12)
            [ "$hq" = "$hn" ] || bad+=" body $hq/$hn"
        fi
        for h in $KEYH; do
            vq=$(hval "$T/cq.hh" "$h")
            vn=$(hval "$T/cn.hh" "$h")
            [ "$vq" = "$vn" ] || bad+=" $h '$vq'/'$vn'"
        done
        if [ -n "$bad" ]; then
            echo "check: $m $p: MISMATCH quinistry/nginx:$bad"
            die "servers differ; not measuring"
        fi
        if [ $m = GET ]; then
            echo "check: GET+HEAD $p: same status, body ($(wc -c <"$T/cq.b") bytes, sha256 $hq...), $(echo "$KEYH" | wc -w) key headers"
        fi
    done
done
fetch "$QPORT" "$MAN" "$DOCKER_MT" "$T/hq"
fetch "$NPORT" "$MAN" "$DOCKER_MT" "$T/hn"
HEADQ=$(wc -c <"$T/hq.h")
HEADN=$(wc -c <"$T/hn.h")

# ---- measurement helpers -----------------------------------------------------
nginx_pids() { echo "$NPID $(pgrep -P "$NPID" | tr '\n' ' ')"; }
# LOGGED=1: the servers with their request logs on (the headlog row)
pids_of() {
    case $1${LOGGED:+log} in q) echo "$QPID" ;; qlog) echo "$QLPID" ;; *) nginx_pids ;; esac
}
port_of() {
    case $1${LOGGED:+log} in
    q) echo "$QPORT" ;; qlog) echo "$QLPORT" ;; n) echo "$NPORT" ;; nlog) echo "$NLPORT" ;;
    esac
}
# proc_sum FILE AWK PID...: the sum over PIDs of the number the awk program
# AWK prints from /proc/PID/FILE (a process gone counts 0)
proc_sum() {
    local f=$1 prog=$2 s=0 p x
    shift 2
    for p in "$@"; do
        x=$(awk "$prog" "/proc/$p/$f" 2>/dev/null)
        s=$((s + ${x:-0}))
    done
    echo "$s"
}
# utime+stime in ticks; the fields are counted after the ") " that ends
# the command name, which may hold spaces. (SC2016: awk's $, not ours.)
# shellcheck disable=SC2016
cpu_ticks() { proc_sum stat '{ sub(/.*\) /, ""); print $12 + $13 }' "$@"; }
# shellcheck disable=SC2016
rss_kb() { proc_sum status '/^VmRSS:/ { print $2 }' "$@"; }
# shellcheck disable=SC2016
pss_kb() { proc_sum smaps_rollup '/^Pss:/ { print $2 }' "$@"; }
CLK=$(getconf CLK_TCK)

declare -A V   # V[key,srv] = space-separated values (one per round)
declare -A CPU # CPU[key,srv] = "pct% us/req" of the last round
declare -A IDLE_NOTE
rec() { V[$1,$2]="${V[$1,$2]:-} $3"; }
med() { # median of the recorded values
    echo "${V[$1,$2]:-}" | tr ' ' '\n' | grep -v '^$' | sort -g |
        awk '{a[NR]=$1} END{if(!NR){print "n/a"; exit} if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
share() { # share SRV: last idle run over the mean of the runs just before and after it
    local a b c
    a=$(echo "${V[idle,$1]:-}" | awk '{print $NF}')
    b=$(echo "${V[idle.before,$1]:-}" | awk '{print $NF}')
    c=$(echo "${V[idle.after,$1]:-}" | awk '{print $NF}')
    ratio "$a" "$(awk -v b="$b" -v c="$c" 'BEGIN{ print (b + c) / 2 }')"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 == 0 || a == "n/a" || b == "n/a" || a == "") print "n/a"; else printf "%.2f", a/b }'; }
to_ms() { # wrk latency "1.23ms" / "850.00us" / "1.02s" -> ms
    awk -v x="$1" 'BEGIN{ if (x ~ /us$/) {sub(/us$/,"",x); print x/1000} else if (x ~ /ms$/) {sub(/ms$/,"",x); print x+0} else if (x ~ /s$/) {sub(/s$/,"",x); print x*1000} else print "nan" }'
}
WARN=
warn_if() { # warn_if SRV KEY TEXT: note errors seen during a run
    [ -n "$3" ] && WARN+="  - $2 ($( [ "$1" = q ] && echo quinistry || echo nginx )): $3\n"
}
LUA_MAN=$T/manifest.lua
printf 'wrk.headers["Accept"] = "%s"\n' "$DOCKER_MT" >"$LUA_MAN"

# wrk_run SRV KEY PATH CONNS LUA|"" [latency]: records req/s (and p50/p99)
wrk_run() {
    local srv=$1 key=$2 path=$3 c=$4 lua=$5 lat=${6:-} port pids t0 t1 out rps req
    port=$(port_of "$srv")
    pids=$(pids_of "$srv")
    local a=(-t1 -c "$c" -d "$DURATION" --timeout 5s)
    [ -n "$lua" ] && a+=(-s "$lua")
    [ -n "$lat" ] && a+=(--latency)
    t0=$(cpu_ticks $pids)
    out=$(pin_cli wrk "${a[@]}" "http://127.0.0.1:$port$path" 2>&1)
    t1=$(cpu_ticks $pids)
    echo "$out" >>"$T/wrk.log"
    rps=$(echo "$out" | awk '/^Requests\/sec:/{print $2}')
    req=$(echo "$out" | awk '/ requests in /{print $1}')
    [ -n "$rps" ] || { echo "$out" >&2; rps=0; req=0; }
    rec "$key" "$srv" "$rps"
    CPU[$key,$srv]=$(awk -v d=$((t1 - t0)) -v hz="$CLK" -v s="$DUR_S" -v r="$req" \
        'BEGIN{printf "%.0f%% %.1fus/req", 100*d/hz/s, (r>0 ? 1e6*d/hz/r : 0)}')
    rec "$key.us" "$srv" "$(awk -v d=$((t1 - t0)) -v hz="$CLK" -v r="$req" 'BEGIN{ if (r > 0) printf "%.2f", 1e6*d/hz/r; else print "n/a" }')"
    warn_if "$srv" "$key" "$(echo "$out" | grep -E 'Non-2xx|Socket errors' | tr '\n' ' ')"
    if [ -n "$lat" ]; then
        rec "$key.p50" "$srv" "$(to_ms "$(echo "$out" | awk '$1=="50%"{print $2}')")"
        rec "$key.p99" "$srv" "$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")"
    fi
}
# lg_run SRV KEY loadgen-run-args...: records req/s
lg_run() {
    local srv=$1 key=$2 port pids t0 t1 out rps req err
    shift 2
    port=$(port_of "$srv")
    pids=$(pids_of "$srv")
    t0=$(cpu_ticks $pids)
    out=$(pin_cli "$LOADGEN" run -p "$port" -d "$DUR_S" "$@" 2>&1)
    t1=$(cpu_ticks $pids)
    echo "$out" >>"$T/loadgen.log"
    rps=$(echo "$out" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p')
    req=$(echo "$out" | sed -n 's/^requests=\([0-9]*\).*/\1/p')
    [ -n "$rps" ] || { echo "$out" >&2; rps=0; req=0; }
    rec "$key" "$srv" "$rps"
    CPU[$key,$srv]=$(awk -v d=$((t1 - t0)) -v hz="$CLK" -v s="$DUR_S" -v r="$req" \
        'BEGIN{printf "%.0f%% %.1fus/req", 100*d/hz/s, (r>0 ? 1e6*d/hz/r : 0)}')
    rec "$key.us" "$srv" "$(awk -v d=$((t1 - t0)) -v hz="$CLK" -v r="$req" 'BEGIN{ if (r > 0) printf "%.2f", 1e6*d/hz/r; else print "n/a" }')"
    err=$(echo "$out" | sed -n 's/.*errors=\([0-9]*\) non2xx=\([0-9]*\).*/\1 \2/p')
    case $err in "0 0" | "") ;; *) warn_if "$srv" "$key" "errors/non-2xx: $err" ;; esac
}
# ret_run SRV KEY: returning clients (loadgen returning): records p90 as
# KEY, p50 as KEY.p50
ret_run() {
    local srv=$1 key=$2 out f
    out=$(pin_cli "$LOADGEN" returning -p "$(port_of "$srv")" -n "$RET_CLIENTS" \
        -s "$RET_SILENCE" -r "$RET_ROUNDS" -c "$CONNS" 2>&1)
    echo "$out" >>"$T/loadgen.log"
    f() { echo "$out" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
    rec "$key" "$srv" "$(f p90_ms)"
    rec "$key.p50" "$srv" "$(f p50_ms)"
    CPU[$key,$srv]="max $(f max_ms) ms, busy load $(f busy_rps) req/s"
    [ "$(f errors)/$(f busy_errors)" = 0/0 ] ||
        warn_if "$srv" "$key" "errors (returning/busy): $(f errors)/$(f busy_errors)"
}
both() { # both FUNC KEY ARGS...: ROUNDS x (quinistry, nginx)
    local f=$1 key=$2 r s
    shift 2
    case ",${ONLY:-$key}," in *",$key,"*) ;; *) return 0 ;; esac
    for r in $(seq "$ROUNDS"); do
        # alternate the order so that drift hits both servers alike
        for s in $([ $((r % 2)) = 1 ] && echo q n || echo n q); do
            "$f" "$s" "$key" "$@"
        done
    done
    printf '  %-12s quinistry %-10s nginx %s\n' "$key" "$(med "$key" q)" "$(med "$key" n)"
}

# ---- header --------------------------------------------------------------------
rps_enable
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
HDR="date: $(date -u +%Y-%m-%dT%H:%M:%SZ)
kernel: $(uname -srm); load average at start: $LOADAVG
cpu: ${CPU_MODEL:-unknown}; nproc: $NCPU
pinning: servers on CPU $SERVER_CPU (taskset -c $SERVER_CPU), load generators (wrk -t1, loadgen) on CPU $CLIENT_CPU
loopback receive steering: $RPS_STATE
servers: $QVERSION ($QUINISTRY -q -c $MAXCONN) vs $("$NGINX" -v 2>&1 | sed 's/.*version: //') (worker_processes 1, access_log off, sendfile on, open_file_cache, etag off, keepalive_requests 1e9)
load: wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}'), loadgen (bench/loadgen.c); $DURATION per run, $ROUNDS round(s), median; $CONNS conns unless stated
response head bytes for GET manifest: quinistry $HEADQ, nginx $HEADN (nginx adds Server, Last-Modified, Accept-Ranges)"
echo
echo "$HDR"
echo

for s in q n; do rec rss_idle $s "$(rss_kb $(pids_of $s))"; rec pss_idle $s "$(pss_kb $(pids_of $s))"; done

echo "measuring ($DURATION per run)..."
# warm up both
for s in q n; do
    pin_cli wrk -t1 -c "$CONNS" -d "$WARMUP" -s "$LUA_MAN" "http://127.0.0.1:$(port_of $s)$MAN" >/dev/null 2>&1
done

both wrk_run v2 /v2/ "$CONNS" ""
both wrk_run manifest "$MAN" "$CONNS" "$LUA_MAN"
# HEAD: wrk 4.1 does not finish HEAD responses on keep-alive connections (it
# waits for a body of Content-Length bytes: 0 requests completed), so loadgen.
both lg_run head -m HEAD -u "$MAN" -H "Accept: $DOCKER_MT" -c "$CONNS"
LOGGED=1 both lg_run headlog -m HEAD -u "$MAN" -H "Accept: $DOCKER_MT" -c "$CONNS"
# layer: wrk reads in 8 KiB pieces and is the bottleneck for a ~100 KB body
# (both servers then look alike), so loadgen (64 KiB reads)
both lg_run layer -u "$LAYER" -c "$CONNS"
both lg_run close -x -u "$MAN" -H "Accept: $DOCKER_MT" -c "$CONNS"
both wrk_run lat "$MAN" "$LAT_CONNS" "$LUA_MAN" latency
both ret_run ret

# RSS after load (idle RSS was taken right after the checks)
for s in q n; do rec rss_load $s "$(rss_kb $(pids_of $s))"; rec pss_load $s "$(pss_kb $(pids_of $s))"; done

# idle keep-alive connections held by loadgen while wrk runs 64 active ones
# Each round also measures the same load without them just before and
# just after, so the share (with / without) compares runs made seconds
# apart, and a drift in the machine's speed cancels out. It has no target:
# one poll() over every connection costs this, by design (bench/README.md,
# "The price of one poll() over every connection").
idle_run() { # idle_run SRV KEY
    local srv=$1 key=$2 port line ready still
    port=$(port_of "$srv")
    wrk_run "$srv" "$key.before" "$MAN" "$CONNS" "$LUA_MAN"
    rm -f "$T/idle.in"
    mkfifo "$T/idle.in"
    timeout -k 5 $((RUN_LIMIT + 120)) taskset -c "$CLIENT_CPU" "$LOADGEN" idle -p "$port" -n "$IDLE_CONNS" -t $((RUN_LIMIT + 90)) \
        <"$T/idle.in" >"$T/idle.out" 2>&1 &
    IDLEPID=$!
    exec 7>"$T/idle.in"
    ready=$(wait_for 1200 "$T/idle.out" 's/^ready //p' "$IDLEPID")
    [ "${ready:-0}" = "$IDLE_CONNS" ] || warn_if "$srv" "$key" "only ${ready:-0} of $IDLE_CONNS idle connections set up ($(grep failed "$T/idle.out"))"
    rec rss_idleconns "$srv" "$(rss_kb $(pids_of "$srv"))"
    rec pss_idleconns "$srv" "$(pss_kb $(pids_of "$srv"))"
    wrk_run "$srv" "$key" "$MAN" "$CONNS" "$LUA_MAN"
    exec 7>&-
    wait "$IDLEPID" 2>/dev/null
    IDLEPID=
    still=$(sed -n 's/^still_open //p' "$T/idle.out")
    [ "${still:-0}" = "${ready:-0}" ] || warn_if "$srv" "$key" "server closed $(( ${ready:-0} - ${still:-0} )) of ${ready:-0} idle connections during the run"
    IDLE_NOTE[$srv]+=" ${ready:-0}/${still:-0}"
    sleep 1 # let the server reap the closed connections
    wrk_run "$srv" "$key.after" "$MAN" "$CONNS" "$LUA_MAN"
    rec "$key.share" "$srv" "$(share "$srv")"
}
both idle_run idle

# cold start: fork/exec to first 200 on /v2/, median of COLD_RUNS (timed in C by loadgen)
COLD_QPORT=$("$LOADGEN" freeport)
cold() { # cold SRV KEY
    local out
    if [ "$1" = q ]; then
        out=$(timeout -k 5 300 taskset -c "$CLIENT_CPU" "$LOADGEN" cold -p "$COLD_QPORT" -n "$COLD_RUNS" -C "$SERVER_CPU" -- \
            "$QUINISTRY" -q -l "127.0.0.1:$COLD_QPORT" 2>&1)
    else
        out=$(timeout -k 5 300 taskset -c "$CLIENT_CPU" "$LOADGEN" cold -p "$COLD_NPORT" -n "$COLD_RUNS" -C "$SERVER_CPU" -- \
            "$NGINX" -p "$T" -c "$T/nginx-cold.conf" -e "$T/logs/error.log" 2>&1)
    fi
    echo "$out" >>"$T/cold.log"
    rec "$2" "$1" "$(echo "$out" | sed -n 's/^median_ms \([0-9.na]*\).*/\1/p')"
    CPU[$2,$1]=$(echo "$out" | sed -n 's/^median_ms [^ ]* min_ms \([0-9.]*\) max_ms \([0-9.]*\) runs \([0-9]*\)/min \1 ms, max \2 ms, \3 runs/p')
}
both cold cold

# ---- sizes --------------------------------------------------------------------
QSIZE=$(stat -L -c %s "$QUINISTRY")
# The binary carries its source (issue 12); its code and data are the rest.
QSRC=$("$QUINISTRY" source | tar tvf - | awk '{ s += $3 } END { print s + 0 }')
NSIZE=$(stat -L -c %s "$NGINX")
linkage() { if readelf -lW "$1" 2>/dev/null | grep -q 'INTERP'; then echo dynamic; elif readelf -h "$1" >/dev/null 2>&1; then echo static; else echo "?"; fi; }
QLINK=$(linkage "$QUINISTRY")
NLINK=$(linkage "$NGINX")

# ---- table ----------------------------------------------------------------------
ROWS=()
# The issue's targets: "r>=1.2" is on the ratio column, "q<1024" on
# quinistry's own value. A row without one is context.
MET=0 MISSED=0 UNMEASURED=0
verdict() { # verdict TARGET Q RATIO: sets VERDICT ("ratio >=1.2: met", "...: MISSED")
    local t=$1 v what
    VERDICT=
    [ -n "$t" ] || return 0
    case $t in r*) v=$3 what="ratio" ;; *) v=$2 what="quinistry" ;; esac
    if [ "$v" = n/a ] || [ -z "$v" ]; then # not measured (ONLY=...)
        UNMEASURED=$((UNMEASURED + 1)); VERDICT="$what ${t:1}: not measured"
        return 0
    fi
    if awk -v v="$v" -v op="${t:1:2}" -v lim="${t//[^0-9.]/}" 'BEGIN{
        if (v == "n/a" || v == "") exit 1
        if (op == ">=") exit !(v >= lim); if (op == "<=") exit !(v <= lim)
        if (substr(op, 1, 1) == "<") exit !(v < lim); exit 1 }'; then
        MET=$((MET + 1)); VERDICT="$what ${t:1}: met"
    else
        MISSED=$((MISSED + 1)); VERDICT="$what ${t:1}: MISSED"
    fi
}
# row LABEL Q N RATIO [TARGET] [EXACT]: the verdict uses EXACT (the unrounded
# ratio or value) when given, so 0.997 is not "1.00: met"
row() { verdict "${5:-}" "${6:-$2}" "${6:-$4}"; ROWS+=("$1|$2|$3|$4|$VERDICT"); } # metric | q | n | ratio | target
fmt() { awk -v x="$1" -v d="$2" 'BEGIN{ if (x == "n/a" || x == "") print "n/a"; else printf "%.*f", d, x }'; }
addm() { # addm LABEL KEY DECIMALS DIRECTION [scale] [target]
    local q n sc=${5:-1}
    q=$(awk -v x="$(med "$2" q)" -v s="$sc" 'BEGIN{ if (x == "n/a") print x; else print x*s }')
    n=$(awk -v x="$(med "$2" n)" -v s="$sc" 'BEGIN{ if (x == "n/a") print x; else print x*s }')
    local exact=$q
    case ${6:-} in r*) exact=$(awk -v a="$q" -v b="$n" 'BEGIN{ if (b+0 == 0 || a == "n/a" || b == "n/a") print "n/a"; else printf "%.6f", a/b }') ;; esac
    row "$1 ($4 is better)" "$(fmt "$q" "$3")" "$(fmt "$n" "$3")" "$(ratio "$q" "$n")" "${6:-}" "$exact"
}
MB=$(awk -v s="$LAYER_SIZE" 'BEGIN{print s/1e6}')
addm "GET /v2/ req/s, $CONNS keep-alive conns (wrk)" v2 0 higher
addm "GET manifest by tag req/s, $CONNS keep-alive conns (wrk)" manifest 0 higher 1 "r>=1.2"
addm "HEAD manifest req/s, $CONNS keep-alive conns (loadgen)" head 0 higher 1 "r>=1.2"
addm "GET layer blob MB/s (body only, 1 MB = 1e6 B), $CONNS keep-alive conns (loadgen)" layer 0 higher "$MB" "r>=1.0"
addm "GET manifest req/s, new connection per request, $CONNS concurrent (loadgen)" close 0 higher 1 "r>=1.0"
addm "server CPU per HEAD manifest, us (utime+stime / requests)" head.us 1 lower
addm "the same with the request log on (quinistry without -q, nginx access_log; to /dev/null), us" headlog.us 1 lower
addm "server CPU per new-connection GET manifest, us (utime+stime / requests)" close.us 1 lower
addm "GET manifest p50 latency ms, $LAT_CONNS conns (wrk)" lat.p50 2 lower
addm "GET manifest p99 latency ms, $LAT_CONNS conns (wrk)" lat.p99 2 lower 1 "r<=1.0"
addm "GET manifest req/s at $LAT_CONNS conns (wrk)" lat 0 higher
RET_WHAT="GET /v2/ after $RET_SILENCE s quiet, $RET_CLIENTS keep-alive clients"
RET_WHAT+=" x $RET_ROUNDS + $CONNS busy"
addm "$RET_WHAT, p50 ms" ret.p50 2 lower
addm "$RET_WHAT, p90 ms" ret 2 lower 1 "q<20"
addm "GET manifest req/s, $CONNS active, run just before the next row (wrk)" idle.before 0 higher
addm "GET manifest req/s, $CONNS active + $IDLE_CONNS idle keep-alive conns (wrk + loadgen)" idle 0 higher
addm "GET manifest req/s, $CONNS active, run just after the row above (wrk)" idle.after 0 higher
row "with $IDLE_CONNS idle conns / without (mean of before and after), per round, median (each server against itself) (higher is better)" \
    "$(med idle.share q)" "$(med idle.share n)" "-"
addm "RSS idle KiB (nginx: master+worker VmRSS)" rss_idle 0 lower 1 "q<1024"
addm "RSS after load KiB (nginx: master+worker)" rss_load 0 lower
addm "RSS with $IDLE_CONNS idle conns KiB (nginx: master+worker)" rss_idleconns 0 lower 1 "q<65536"
addm "Cold start ms, exec to first 200 on /v2/, median of $COLD_RUNS" cold 2 lower 1 "q<5"
row "Binary size bytes, the file (quinistry ${QLINK:-?}; nginx ${NLINK:-?}, without its libs)\
 (lower is better)" "$QSIZE" "$NSIZE" "$(ratio "$QSIZE" "$NSIZE")"
row "Binary size bytes without the $QSRC bytes of source it carries (lower is better)" \
    "$((QSIZE - QSRC))" "-" "-" "q<102400"
row "Layer size bytes (served by both)" "$LAYER_SIZE" "$LAYER_SIZE" "1.00"

print_table() {
    local r m q n x t
    printf '%-92s | %12s | %12s | %9s | %s\n' "metric" "quinistry" "nginx" "ratio q/n" "target"
    printf '%s\n' "$(printf '%0.s-' $(seq 160))"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r m q n x t <<<"$r"
        printf '%-92s | %12s | %12s | %9s | %s\n' "$m" "$q" "$n" "$x" "$t"
    done
}
print_md() {
    local r m q n x t
    echo "| metric | quinistry | nginx | ratio quinistry/nginx | target |"
    echo "| --- | ---: | ---: | ---: | --- |"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r m q n x t <<<"$r"
        echo "| $m | $q | $n | $x | $t |"
    done
}
notes() {
    local k
    echo "targets: $MET met, $MISSED missed$([ "$UNMEASURED" = 0 ] || echo ", $UNMEASURED not measured")"
    echo "server CPU use (CPU $SERVER_CPU, utime+stime from /proc) and CPU time per request, last round:"
    for k in v2 manifest head layer close lat idle.before idle idle.after; do
        printf '  %-9s quinistry %-22s nginx %s\n' "$k" "${CPU[$k,q]:-}" "${CPU[$k,n]:-}"
    done
    echo "every round's value (in the order measured; the table has their medians):"
    for k in v2 manifest head layer close lat lat.p99 ret.p50 ret \
        idle.before idle idle.after idle.share; do
        printf '  %-11s quinistry%s; nginx%s\n' "$k" "${V[$k,q]:-}" "${V[$k,n]:-}"
    done
    echo "cold start spread: quinistry ${CPU[cold,q]:-}; nginx ${CPU[cold,n]:-}"
    echo "returning clients, last round: quinistry ${CPU[ret,q]:-}; nginx ${CPU[ret,n]:-}"
    echo "PSS KiB (shared pages counted once) idle / after load / with idle conns: quinistry $(med pss_idle q) / $(med pss_load q) / $(med pss_idleconns q); nginx $(med pss_idle n) / $(med pss_load n) / $(med pss_idleconns n)"
    echo "idle connections set up/still open after the run, per round: quinistry${IDLE_NOTE[q]:-}; nginx${IDLE_NOTE[n]:-}"
    if [ -n "$WARN" ]; then
        echo "warnings:"
        printf "%b" "$WARN"
    fi
}

echo
print_table
echo
notes
{
    echo "$HDR" | sed 's/^/    /'
    echo
    print_md
    echo
    notes | sed 's/^/    /'
} >"$BENCH_OUT"
echo
echo "markdown written to $BENCH_OUT"
