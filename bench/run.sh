#!/usr/bin/env bash
# Adit's benchmark: direct vs Adit vs rathole (tcp, noise) vs bore, on loopback; and Adit as a
# two-node cluster on PostgreSQL, entered at the node holding the connection and at the other.
#
#   bench/run.sh [--quick] [--runs N] [--systems "direct adit ..."] [--streams N] [--keep]
#
# Builds Adit in release mode, installs what is missing (Debian wrk, iperf3, nginx-light;
# rathole and bore-cli from crates.io into bench/.tools), starts a local origin (nginx with
# one worker, iperf3 -s) and measures each system in turn. Results: bench/results/
# (raw.csv, results.csv, table.md, logs/); a full run also copies results.csv and table.md
# to bench/. See bench/README.md for the method.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TOOLS="$BENCH_DIR/.tools"
RESULTS="$BENCH_DIR/results"

QUICK=0
RUNS=""
SYSTEMS="direct adit adit-2n-holder adit-2n-forwarded rathole-tcp rathole-noise bore"
STREAMS=10000
KEEP=0
SKIP_BUILD=0

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) RUNS="${2:?--runs needs a number}"; shift ;;
        --systems) SYSTEMS="${2:?--systems needs a list}"; shift ;;
        --streams) STREAMS="${2:?--streams needs a number}"; shift ;;
        --keep) KEEP=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        -h | --help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    DUR=3
    IPERF_T=3
    RUNS=${RUNS:-1}
else
    DUR=10
    IPERF_T=10
    RUNS=${RUNS:-3}
fi
case "$RUNS" in '' | *[!0-9]* | 0) echo "--runs must be a positive number" >&2; exit 2 ;; esac

# Ports, all on 127.0.0.1. bore's control port (7835) is fixed by bore itself.
BASE=${BENCH_PORT_BASE:-29000}
NGINX_PORT=$((BASE + 80))
IPERF_PORT=$((BASE + 201))
SINK_PORT=$((BASE + 500))
ADIT_EDGE=$((BASE + 180))
ADIT_TUN=$((BASE + 144))
ADIT_API=$((BASE + 100))
ADIT_EDGE_B=$((BASE + 181))
ADIT_TUN_B=$((BASE + 145))
ADIT_API_B=$((BASE + 101))
ADIT_ACC_IPERF=$((BASE + 202))
ADIT_ACC_SINK=$((BASE + 203))
ADIT_ACC_SINK2=$((BASE + 204))
RH_CTRL=$((BASE + 333))
RH_WEB=$((BASE + 381))
RH_IPERF=$((BASE + 382))
RH_SINK=$((BASE + 383))
BORE_CTRL=7835
BORE_WEB=$((BASE + 481))
BORE_IPERF=$((BASE + 482))
BORE_SINK=$((BASE + 483))

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mWARNING: %s\033[0m\n' "$*" >&2; echo "$*" >>"$WORK/failures.txt"; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }
now_ns() { date +%s%N; }

# ---------------------------------------------------------------- processes and cleanup
PIDS=()
WORK=""

stop_pid() { # PID: TERM, then KILL after 3 s
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        mkdir -p "$RESULTS/logs"
        cp -r "$WORK/logs/." "$RESULTS/logs/" 2>/dev/null
        [ "$KEEP" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# spawn NAME CMD...: starts CMD in the background, output to logs/NAME.log; sets SPAWNED.
spawn() {
    local name=$1
    shift
    "$@" >>"$WORK/logs/$name.log" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

forget_pid() { # removes a stopped PID from PIDS
    local pid=$1 p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

kill_and_forget() {
    local p
    for p in "$@"; do
        stop_pid "$p"
        forget_pid "$p"
    done
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() {
    local port=$1 limit=${2:-15} start
    start=$(date +%s)
    while [ $(($(date +%s) - start)) -lt "$limit" ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# ---------------------------------------------------------------- /proc readings
ticks_of() { # utime+stime (clock ticks) of a process, all its threads
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}
ticks_sum() {
    local t=0 p
    for p in "$@"; do t=$((t + $(ticks_of "$p"))); done
    echo "$t"
}
status_kib() { # FIELD PID -> KiB (VmRSS, VmHWM)
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status" 2>/dev/null || echo 0
}
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- results
rec() { # METRIC VALUE
    [ -n "${2:-}" ] || return 0
    echo "$RUN,$SYS,$1,$2" >>"$RESULTS/raw.csv"
    printf '    %-28s %s\n' "$1" "$2" >&2
}
calc() { python3 -c "import sys; print(eval(sys.argv[1]))" "$1"; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[2]):.{int(sys.argv[1])}f}')" "$@"; }

# ---------------------------------------------------------------- install and build
install_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v iperf3 >/dev/null || missing+=(iperf3)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} (apt-get)"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            || die "apt-get install ${missing[*]} failed"
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    mkdir -p "$TOOLS"
    local crate bin
    for crate in rathole:rathole bore-cli:bore; do
        bin=${crate#*:}
        crate=${crate%%:*}
        [ -x "$TOOLS/bin/$bin" ] && continue
        case " $SYSTEMS " in *" $bin"*) ;; *) continue ;; esac
        log "cargo install --root bench/.tools $crate (once; takes minutes)"
        # The newest compatible dependencies first: rathole 0.5's lock file pins a `time`
        # that no longer builds with current compilers.
        cargo install --root "$TOOLS" "$crate" \
            || cargo install --locked --root "$TOOLS" "$crate" \
            || die "cargo install $crate failed"
    done
    RATHOLE="$TOOLS/bin/rathole"
    BORE="$TOOLS/bin/bore"
}

build_adit() {
    if [ "$SKIP_BUILD" = 0 ]; then
        log "cargo build --release -p adit-server -p adit-agent"
        (cd "$ROOT" && cargo build --release -p adit-server -p adit-agent) || die "release build failed"
    fi
    local target
    target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') \
        || target="$ROOT/target"
    ADIT_SERVER="$target/release/adit-server"
    ADIT="$target/release/adit"
    [ -x "$ADIT_SERVER" ] && [ -x "$ADIT" ] || die "release binaries missing in $target/release"
}

# ---------------------------------------------------------------- origin
start_origin() {
    mkdir -p "$WORK/www" "$WORK/nginx/logs"
    chmod 755 "$WORK" "$WORK/www"
    head -c 100 /dev/zero | tr '\0' 'a' >"$WORK/www/small.txt"
    head -c 1048576 /dev/urandom >"$WORK/www/mib.bin"
    head -c $((256 * 1048576)) /dev/urandom >"$WORK/www/big.bin"
    chmod 644 "$WORK/www/"*
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/logs/nginx-error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
        root $WORK/www;
    }
}
EOF
    spawn nginx "$NGINX" -p "$WORK/nginx" -e "$WORK/logs/nginx-error.log" -c "$WORK/nginx/nginx.conf"
    NGINX_PID=$SPAWNED
    wait_port "$NGINX_PORT" 10 || die "nginx did not start (see $WORK/logs/nginx-error.log)"
    [ "$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$NGINX_PORT/small.txt")" = 100 ] \
        || die "nginx does not serve small.txt"
    start_iperf
}

start_iperf() {
    spawn iperf3 iperf3 -s -p "$IPERF_PORT" -B 127.0.0.1
    IPERF_PID=$SPAWNED
    wait_port "$IPERF_PORT" 10 || die "iperf3 -s did not start"
}

restart_iperf() {
    kill_and_forget "$IPERF_PID"
    start_iperf
}

# ---------------------------------------------------------------- measurements
# Each system sets: HTTP_PORT (wrk, curl), TCP_PORT (iperf3 -c), SINK_ENTRY (the idle
# streams), TUN_PIDS (the tunnel's processes: edge+connector, server+client), SERVER_PID,
# CLIENT_PIDS (for RSS), ACCESS_PID (Adit's `adit access tcp` for iperf3, else empty),
# SINK_PIDS (NAME=PID pairs for the idle-streams RSS reading).

# wrk_run NAME WRK-ARGS... -> W_REQ W_BYTES W_DUR_US W_P50 W_P99 W_ERR, W_TICKS (tunnel)
wrk_run() {
    local name=$1 out t0 t1 a0 a1 line
    shift
    out="$WORK/logs/$SYS-run$RUN-$name.wrk"
    t0=$(ticks_sum "${TUN_PIDS[@]}")
    timeout $((DUR + 30)) wrk -s "$BENCH_DIR/report.lua" "$@" >"$out" 2>&1
    t1=$(ticks_sum "${TUN_PIDS[@]}")
    W_TICKS=$((t1 - t0))
    line=$(grep '^BENCH ' "$out" | tail -1)
    if [ -z "$line" ]; then
        warn "$SYS run $RUN: wrk $name produced no result (see logs/$(basename "$out"))"
        return 1
    fi
    # shellcheck disable=SC2086
    eval "$(echo "${line#BENCH }" | tr ' ' '\n' | sed 's/^/W_/')"
    W_REQ=$W_requests W_BYTES=$W_bytes W_DUR_US=$W_duration_us W_P50=$W_p50_us W_P99=$W_p99_us
    W_ERR=$((W_err_connect + W_err_read + W_err_write + W_err_status + W_err_timeout))
    if [ "$W_ERR" -gt 0 ]; then
        warn "$SYS run $RUN: wrk $name: $W_ERR errors (connect $W_err_connect, read $W_err_read, write $W_err_write, status $W_err_status, timeout $W_err_timeout) in $W_REQ requests"
    fi
    return 0
}

url() { echo "http://127.0.0.1:$HTTP_PORT/$1"; }
HOST_HDR="Host: bench.localhost"

measure_http() {
    # warm-up (not recorded)
    timeout 20 wrk -t2 -c64 -d1s -H "$HOST_HDR" "$(url small.txt)" >/dev/null 2>&1

    if wrk_run small -t2 -c64 -d"${DUR}s" --latency -H "$HOST_HDR" "$(url small.txt)"; then
        rec http_small_rps "$(fmt 0 "$(calc "$W_REQ / ($W_DUR_US / 1e6)")")"
        rec http_small_p50_us "$W_P50"
        rec http_small_p99_us "$W_P99"
        rec http_small_errors "$W_ERR"
        [ ${#TUN_PIDS[@]} -gt 0 ] && rec http_small_cpu_us_per_req \
            "$(fmt 1 "$(calc "$W_TICKS * 1e6 / $CLK_TCK / max($W_REQ, 1)")")"
    fi
    if wrk_run rtt -t1 -c1 -d"${DUR}s" --latency -H "$HOST_HDR" "$(url small.txt)"; then
        rec rtt_p50_us "$W_P50"
        rec rtt_p99_us "$W_P99"
        rec rtt_errors "$W_ERR"
    fi
    if wrk_run mib -t2 -c4 -d"${DUR}s" -H "$HOST_HDR" "$(url mib.bin)"; then
        rec mib_MBps "$(fmt 1 "$(calc "$W_BYTES / ($W_DUR_US / 1e6) / 1e6")")"
        rec mib_errors "$W_ERR"
        [ ${#TUN_PIDS[@]} -gt 0 ] && rec mib_cpu_s_per_GB \
            "$(fmt 2 "$(calc "$W_TICKS / $CLK_TCK / max($W_BYTES / 1e9, 1e-9)")")"
    fi
    if wrk_run newconn -t2 -c64 -d"${DUR}s" -H "$HOST_HDR" -H 'Connection: close' "$(url small.txt)"; then
        rec newconn_cps "$(fmt 0 "$(calc "$W_REQ / ($W_DUR_US / 1e6)")")"
        rec newconn_errors "$W_ERR"
        [ ${#TUN_PIDS[@]} -gt 0 ] && rec newconn_cpu_us_per_conn \
            "$(fmt 1 "$(calc "$W_TICKS * 1e6 / $CLK_TCK / max($W_REQ, 1)")")"
    fi
    # One large download through the HTTP path (for Adit: the HTTP edge).
    local t0 t1 r
    t0=$(ticks_sum "${TUN_PIDS[@]}")
    r=$(curl -s -o /dev/null --max-time 120 -H "$HOST_HDR" -w '%{http_code} %{size_download} %{time_total}' "$(url big.bin)")
    t1=$(ticks_sum "${TUN_PIDS[@]}")
    # shellcheck disable=SC2086
    set -- $r
    if [ "${1:-}" = 200 ] && [ "${2:-0}" = $((256 * 1048576)) ]; then
        rec http_bulk_MBps "$(fmt 1 "$(calc "$2 / $3 / 1e6")")"
        [ ${#TUN_PIDS[@]} -gt 0 ] && rec http_bulk_cpu_s_per_GB \
            "$(fmt 2 "$(calc "($t1 - $t0) / $CLK_TCK / ($2 / 1e9)")")"
    else
        warn "$SYS run $RUN: 256 MiB download failed: status ${1:-none}, ${2:-0} bytes"
    fi
}

# iperf_run NAME IPERF-ARGS...
iperf_run() {
    local name=$1 out t0 t1 a0 a1 res bytes secs
    shift
    out="$WORK/logs/$SYS-run$RUN-$name.json"
    t0=$(ticks_sum "${TUN_PIDS[@]}")
    a0=$(ticks_sum $ACCESS_PID)
    timeout $((IPERF_T + 30)) iperf3 -c 127.0.0.1 -p "$TCP_PORT" -t "$IPERF_T" -J "$@" >"$out" 2>&1
    t1=$(ticks_sum "${TUN_PIDS[@]}")
    a1=$(ticks_sum $ACCESS_PID)
    res=$(python3 - "$out" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    s = d["end"]["sum_received"]
    print(s["bytes"], s["seconds"])
except Exception as e:
    print("error", e)
EOF
)
    # shellcheck disable=SC2086
    set -- $res
    if [ "${1:-error}" = error ] || [ "${1:-0}" = 0 ]; then
        warn "$SYS run $RUN: iperf3 $name failed (see logs/$(basename "$out"))"
        restart_iperf
        return 1
    fi
    bytes=$1 secs=$2
    rec "${name}_MBps" "$(fmt 1 "$(calc "$bytes / $secs / 1e6")")"
    [ ${#TUN_PIDS[@]} -gt 0 ] && rec "${name}_cpu_s_per_GB" "$(fmt 2 "$(calc "($t1 - $t0) / $CLK_TCK / ($bytes / 1e9)")")"
    [ -n "$ACCESS_PID" ] && rec "${name}_access_cpu_s_per_GB" "$(fmt 2 "$(calc "($a1 - $a0) / $CLK_TCK / ($bytes / 1e9)")")"
    sleep 0.5
}

measure_tcp() {
    iperf_run tcp1
    iperf_run tcp1R -R
    iperf_run tcp8 -P 8
}

measure_rss_idle() {
    local p m=0 v
    rec rss_idle_server_MiB "$(fmt 2 "$(calc "$(status_kib VmRSS "$SERVER_PID") / 1024")")"
    for p in $CLIENT_PIDS; do v=$(status_kib VmRSS "$p"); [ "${v:-0}" -gt "$m" ] && m=$v; done
    rec rss_idle_client_MiB "$(fmt 2 "$(calc "$m / 1024")")"
}

measure_rss_load() { # peak RSS (VmHWM) after the load tests
    local p m=0 v
    rec rss_load_server_MiB "$(fmt 2 "$(calc "$(status_kib VmHWM "$SERVER_PID") / 1024")")"
    for p in $CLIENT_PIDS; do v=$(status_kib VmHWM "$p"); [ "${v:-0}" -gt "$m" ] && m=$v; done
    rec rss_load_client_MiB "$(fmt 2 "$(calc "$m / 1024")")"
    [ -n "$ACCESS_PID" ] && rec rss_load_access_MiB "$(fmt 2 "$(calc "$(status_kib VmHWM "$ACCESS_PID") / 1024")")"
}

measure_streams() {
    local out args=() p line count=$STREAMS
    out="$WORK/logs/$SYS-run$RUN-streams.txt"
    for p in $SINK_PIDS; do args+=(--pid "$p"); done
    for p in $SINK_ENTRY; do args+=(--target-port "$p"); done
    # rathole and bore hold two sockets per stream in each process (the visitor's and a
    # data connection); keep them inside the descriptor limit.
    if [ "$SYS" != adit ] && [ "$count" -gt "$PEER_STREAMS_MAX" ]; then
        count=$PEER_STREAMS_MAX
    fi
    rec streams_wanted "$count"
    timeout 200 python3 "$BENCH_DIR/streams.py" --sink-port "$SINK_PORT" \
        --count "$count" --timeout 90 "${args[@]}" 2>&1 | head -c 100000 >"$out"
    line=$(grep '^STREAMS ' "$out")
    if [ -z "$line" ]; then
        warn "$SYS run $RUN: idle streams test failed (see logs/$(basename "$out"))"
        return 1
    fi
    eval "$(echo "${line#STREAMS }" | tr ' ' '\n' | sed 's/^/S_/')"
    rec streams_open "$S_accepted"
    rec streams_open_seconds "$S_seconds"
    if [ "$S_accepted" -lt "$count" ] || [ "$S_probed_ok" -lt 10 ]; then
        warn "$SYS run $RUN: idle streams: opened $S_opened, failed $S_failed, reached the sink $S_accepted of $count, echo probes ok $S_probed_ok/10"
    fi
    while read -r line; do
        eval "$(echo "${line#RSS }" | tr ' ' '\n' | sed 's/^/R_/')"
        rec "rss_streams_${R_name}_MiB" "$(fmt 2 "$(calc "$R_with_kib / 1024")")"
        [ "$S_accepted" -gt 0 ] && rec "stream_${R_name}_KiB" \
            "$(fmt 2 "$(calc "($R_with_kib - $R_before_kib) / $S_accepted")")"
    done < <(grep '^RSS ' "$out")
    sleep 1
}

# first_request PID-START-NS: polls every 10 ms (bounded) until the small file answers 200.
first_request() {
    local start=$1 code i
    for i in $(seq 1 1500); do
        code=$(curl -s -o /dev/null --max-time 1 -H "$HOST_HDR" -w '%{http_code}' "$(url small.txt)")
        if [ "$code" = 200 ]; then
            rec first_request_ms "$(fmt 1 "$(calc "($(now_ns) - $start) / 1e6")")"
            return 0
        fi
        sleep 0.01
    done
    return 1
}

# ---------------------------------------------------------------- systems
start_direct() {
    HTTP_PORT=$NGINX_PORT TCP_PORT=$IPERF_PORT SINK_ENTRY="" SERVER_PID="" CLIENT_PIDS=""
    ACCESS_PID="" SINK_PIDS=""
    TUN_PIDS=()
    SYS_PIDS=()
}

# adit_server_up LOGNAME DIR EDGE TUNNEL API [ARGS…]: starts adit-server with its data in
# DIR and waits until its API answers; sets SERVER_UP to its PID.
adit_server_up() {
    local name=$1 dir=$2 edge=$3 tun=$4 api=$5 i
    shift 5
    spawn "$name" "$ADIT_SERVER" --data-dir "$dir" \
        --edge-addr "127.0.0.1:$edge" --edge-tls-addr off \
        --tunnel-addr "127.0.0.1:$tun" --api-addr "127.0.0.1:$api" --zone localhost "$@"
    SERVER_UP=$SPAWNED
    SYS_PIDS+=("$SERVER_UP")
    for i in $(seq 1 300); do
        [ -s "$dir/admin-token" ] && curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$dir/admin-token")" \
            "http://127.0.0.1:$api/api/v1/tunnels" && return 0
        kill -0 "$SERVER_UP" 2>/dev/null || break
        sleep 0.1
    done
    warn "adit-server exited or did not answer (see logs/$name.log)"
    return 1
}

# adit_tunnel DIR API HOSTNAME…: creates the tunnel `bench` (credentials in DIR/cred.json)
# through the API at port API, with a route for each hostname.
adit_tunnel() {
    local d=$1 api=$2 host
    shift 2
    local cli=(env HOME="$d/home" ADIT_API_URL="http://127.0.0.1:$api"
        ADIT_API_TOKEN="$(cat "$d/server/admin-token")" "$ADIT")
    mkdir -p "$d/home"
    {
        "${cli[@]}" tunnel create bench --cred-file "$d/cred.json" &&
            for host in "$@"; do "${cli[@]}" tunnel route dns bench "$host" || exit 1; done
    } >>"$WORK/logs/adit-cli-run$RUN.log" 2>&1 || { warn "adit tunnel create/route failed (see logs/adit-cli-run$RUN.log)"; return 1; }
}

start_adit() {
    local d="$WORK/adit-run$RUN" t0
    adit_server_up "adit-server-run$RUN" "$d/server" "$ADIT_EDGE" "$ADIT_TUN" "$ADIT_API" || return 1
    local server=$SERVER_UP
    adit_tunnel "$d" "$ADIT_API" bench.localhost tcp.localhost sink.localhost || return 1
    cat >"$d/config.yml" <<EOF
tunnel: bench
credentials-file: $d/cred.json
ingress:
  - hostname: bench.localhost
    service: http://127.0.0.1:$NGINX_PORT
  - hostname: tcp.localhost
    service: tcp://127.0.0.1:$IPERF_PORT
  - hostname: sink.localhost
    service: tcp://127.0.0.1:$SINK_PORT
  - service: http_status:404
EOF
    HTTP_PORT=$ADIT_EDGE
    t0=$(now_ns)
    spawn "adit-connector-run$RUN" env HOME="$d/home" "$ADIT" tunnel --config "$d/config.yml" run
    local connector=$SPAWNED
    SYS_PIDS+=("$connector")
    first_request "$t0" || { warn "Adit: no successful request through the edge within 15 s of adit tunnel run"; return 1; }
    spawn "adit-access-tcp-run$RUN" env HOME="$d/home" "$ADIT" access tcp --hostname tcp.localhost \
        --edge "http://127.0.0.1:$ADIT_EDGE" --url "127.0.0.1:$ADIT_ACC_IPERF"
    ACCESS_PID=$SPAWNED
    # Two listeners for the idle streams: `adit access` holds two sockets per stream, and
    # the descriptor limit (ulimit -Hn) may be 20000.
    spawn "adit-access-sink1-run$RUN" env HOME="$d/home" "$ADIT" access tcp --hostname sink.localhost \
        --edge "http://127.0.0.1:$ADIT_EDGE" --url "127.0.0.1:$ADIT_ACC_SINK"
    local access_sink1=$SPAWNED
    spawn "adit-access-sink2-run$RUN" env HOME="$d/home" "$ADIT" access tcp --hostname sink.localhost \
        --edge "http://127.0.0.1:$ADIT_EDGE" --url "127.0.0.1:$ADIT_ACC_SINK2"
    local access_sink2=$SPAWNED
    SYS_PIDS+=("$ACCESS_PID" "$access_sink1" "$access_sink2")
    wait_port "$ADIT_ACC_IPERF" 10 && wait_port "$ADIT_ACC_SINK" 10 && wait_port "$ADIT_ACC_SINK2" 10 \
        || { warn "adit access tcp did not listen"; return 1; }
    TCP_PORT=$ADIT_ACC_IPERF SINK_ENTRY="$ADIT_ACC_SINK $ADIT_ACC_SINK2"
    TUN_PIDS=("$server" "$connector")
    SERVER_PID=$server CLIENT_PIDS=$connector
    SINK_PIDS="server=$server client=$connector access=$access_sink1 access=$access_sink2"
}

# A two-node cluster on PostgreSQL (a fresh database `adit_bench` on $BENCH_PG, by default
# the local server), with a connector keeping one connection, which lands on node-a (nodes
# are taken by name). `holder`: visitors enter node-a; `forwarded`: they enter node-b,
# which holds no connection and carries each request to node-a over a node link.
# HTTP figures only; CPU is that of both nodes and the connector.
start_adit_cluster() {
    local entry=$1 d="$WORK/adit-$1-run$RUN" t0 f
    local db="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
    psql "$db/postgres" -qc "DROP DATABASE IF EXISTS adit_bench WITH (FORCE)" -c "CREATE DATABASE adit_bench" \
        >>"$WORK/logs/psql.log" 2>&1 || { warn "cannot create the database adit_bench on $db (see logs/psql.log)"; return 1; }
    local url="$db/adit_bench"
    adit_server_up "adit-$entry-a-run$RUN" "$d/server" "$ADIT_EDGE" "$ADIT_TUN" "$ADIT_API" \
        --database-url "$url" --node-name node-a || return 1
    local a=$SERVER_UP
    mkdir -p "$d/b"
    # The shared secrets, and the admin token the wait below asks the API with.
    for f in server.key ca.pem ca.key admin-token; do cp -p "$d/server/$f" "$d/b/$f"; done
    adit_server_up "adit-$entry-b-run$RUN" "$d/b" "$ADIT_EDGE_B" "$ADIT_TUN_B" "$ADIT_API_B" \
        --database-url "$url" --node-name node-b || return 1
    local b=$SERVER_UP
    adit_tunnel "$d" "$ADIT_API" bench.localhost || return 1
    cat >"$d/config.yml" <<EOF
tunnel: bench
credentials-file: $d/cred.json
ha-connections: 1
ingress:
  - hostname: bench.localhost
    service: http://127.0.0.1:$NGINX_PORT
  - service: http_status:404
EOF
    if [ "$entry" = holder ]; then HTTP_PORT=$ADIT_EDGE; else HTTP_PORT=$ADIT_EDGE_B; fi
    t0=$(now_ns)
    spawn "adit-$entry-connector-run$RUN" env HOME="$d/home" "$ADIT" tunnel --config "$d/config.yml" run
    local connector=$SPAWNED
    SYS_PIDS+=("$connector")
    first_request "$t0" || { warn "Adit cluster ($entry): no successful request within 15 s of adit tunnel run"; return 1; }
    TUN_PIDS=("$a" "$b" "$connector")
    SERVER_PID=$a CLIENT_PIDS=$connector
}

start_rathole() { # tcp|noise
    local kind=$1 d="$WORK/rathole-$1-run$RUN" priv="" pub="" t0 svc
    mkdir -p "$d"
    if [ "$kind" = noise ]; then
        "$RATHOLE" --genkey >"$d/keys" 2>&1 || { warn "rathole --genkey failed"; return 1; }
        priv=$(sed -n '/Private Key/{n;p}' "$d/keys")
        pub=$(sed -n '/Public Key/{n;p}' "$d/keys")
    fi
    {
        echo "[server]"
        echo "bind_addr = \"127.0.0.1:$RH_CTRL\""
        echo "[server.transport]"
        echo "type = \"$kind\""
        [ "$kind" = noise ] && printf '[server.transport.noise]\nlocal_private_key = "%s"\n' "$priv"
        for svc in web:$RH_WEB iperf:$RH_IPERF sink:$RH_SINK; do
            printf '[server.services.%s]\ntoken = "bench-token"\nbind_addr = "127.0.0.1:%s"\n' "${svc%%:*}" "${svc#*:}"
        done
    } >"$d/server.toml"
    {
        echo "[client]"
        echo "remote_addr = \"127.0.0.1:$RH_CTRL\""
        echo "[client.transport]"
        echo "type = \"$kind\""
        [ "$kind" = noise ] && printf '[client.transport.noise]\nremote_public_key = "%s"\n' "$pub"
        for svc in web:$NGINX_PORT iperf:$IPERF_PORT sink:$SINK_PORT; do
            printf '[client.services.%s]\ntoken = "bench-token"\nlocal_addr = "127.0.0.1:%s"\n' "${svc%%:*}" "${svc#*:}"
        done
    } >"$d/client.toml"
    spawn "rathole-$kind-server-run$RUN" "$RATHOLE" --server "$d/server.toml"
    local server=$SPAWNED
    SYS_PIDS=("$server")
    wait_port "$RH_CTRL" 10 || { warn "rathole server did not listen"; return 1; }
    HTTP_PORT=$RH_WEB
    t0=$(now_ns)
    spawn "rathole-$kind-client-run$RUN" "$RATHOLE" --client "$d/client.toml"
    local client=$SPAWNED
    SYS_PIDS+=("$client")
    first_request "$t0" || { warn "rathole $kind: no successful request within 15 s"; return 1; }
    TCP_PORT=$RH_IPERF SINK_ENTRY=$RH_SINK ACCESS_PID=""
    TUN_PIDS=("$server" "$client")
    SERVER_PID=$server CLIENT_PIDS=$client
    SINK_PIDS="server=$server client=$client"
}

start_bore() {
    local t0 web iperf sink
    spawn "bore-server-run$RUN" "$BORE" server --bind-addr 127.0.0.1 \
        --min-port $((BASE + 400)) --max-port $((BASE + 499))
    local server=$SPAWNED
    SYS_PIDS=("$server")
    wait_port "$BORE_CTRL" 10 || { warn "bore server did not listen on $BORE_CTRL"; return 1; }
    HTTP_PORT=$BORE_WEB
    t0=$(now_ns)
    spawn "bore-web-run$RUN" "$BORE" local "$NGINX_PORT" --local-host 127.0.0.1 --to 127.0.0.1 --port "$BORE_WEB"
    web=$SPAWNED
    SYS_PIDS+=("$web")
    first_request "$t0" || { warn "bore: no successful request within 15 s"; return 1; }
    spawn "bore-iperf-run$RUN" "$BORE" local "$IPERF_PORT" --local-host 127.0.0.1 --to 127.0.0.1 --port "$BORE_IPERF"
    iperf=$SPAWNED
    spawn "bore-sink-run$RUN" "$BORE" local "$SINK_PORT" --local-host 127.0.0.1 --to 127.0.0.1 --port "$BORE_SINK"
    sink=$SPAWNED
    SYS_PIDS+=("$iperf" "$sink")
    wait_port "$BORE_IPERF" 10 || { warn "bore iperf tunnel did not listen"; return 1; }
    TCP_PORT=$BORE_IPERF SINK_ENTRY=$BORE_SINK ACCESS_PID=""
    # One bore client process per forwarded port, as bore ships: CPU is summed over all of
    # them, RSS is that of the busiest (idle/load) or of the sink's client (streams).
    TUN_PIDS=("$server" "$web" "$iperf" "$sink")
    SERVER_PID=$server CLIENT_PIDS="$web $iperf $sink"
    SINK_PIDS="server=$server client=$sink"
}

run_system() {
    SYS=$1
    log "run $RUN/$RUNS: $SYS"
    SYS_PIDS=()
    TUN_PIDS=()
    ACCESS_PID="" SINK_PIDS="" CLIENT_PIDS="" SERVER_PID=""
    local ok=0
    # Other work on the machine shows here (the load average includes our own processes
    # from the previous system only for a few seconds).
    rec loadavg_1m "$(cut -d' ' -f1 /proc/loadavg)"
    case "$SYS" in
        direct) start_direct && ok=1 ;;
        adit) start_adit && ok=1 ;;
        adit-2n-holder) start_adit_cluster holder && ok=1 ;;
        adit-2n-forwarded) start_adit_cluster forwarded && ok=1 ;;
        rathole-tcp) start_rathole tcp && ok=1 ;;
        rathole-noise) start_rathole noise && ok=1 ;;
        bore) start_bore && ok=1 ;;
        *) die "unknown system $SYS" ;;
    esac
    if [ "$ok" = 1 ] && [ "${SYS#adit-2n-}" != "$SYS" ]; then
        measure_http
    elif [ "$ok" = 1 ]; then
        if [ "$SYS" != direct ]; then
            sleep 1
            measure_rss_idle
        fi
        measure_http
        measure_tcp
        if [ "$SYS" != direct ]; then
            measure_rss_load
            measure_streams
        fi
    else
        warn "$SYS run $RUN: did not start; skipped"
    fi
    kill_and_forget "${SYS_PIDS[@]}"
    sleep 1
}

# ---------------------------------------------------------------- main
# The whole run is one function, parsed before it starts: bash reads a script as it runs,
# so an edit of this file during a (30-minute) run would otherwise derail it.
main() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    FD_LIMIT=$(ulimit -n)
    # Each peer process holds two sockets per idle stream; Adit's edge and connector one.
    PEER_STREAMS_MAX=$(((FD_LIMIT - 2000) / 2))
    [ "$FD_LIMIT" -ge $((STREAMS + 1000)) ] \
        || echo "warning: ulimit -n is $FD_LIMIT; $STREAMS idle streams may not fit" >&2

    LOAD_BEFORE_BUILD=$(cut -d' ' -f1-3 /proc/loadavg)
    install_tools
    build_adit

    for p in $NGINX_PORT $IPERF_PORT $SINK_PORT $ADIT_EDGE $ADIT_TUN $ADIT_API $ADIT_EDGE_B $ADIT_TUN_B $ADIT_API_B $ADIT_ACC_IPERF $ADIT_ACC_SINK $ADIT_ACC_SINK2 \
        $RH_CTRL $RH_WEB $RH_IPERF $RH_SINK $BORE_CTRL $BORE_WEB $BORE_IPERF $BORE_SINK; do
        port_busy "$p" && die "port 127.0.0.1:$p is in use (set BENCH_PORT_BASE to move the range; bore needs 7835)"
    done

    WORK=$(mktemp -d /tmp/adit-bench.XXXXXX)
    mkdir -p "$WORK/logs" "$RESULTS"
    rm -rf "$RESULTS/logs"
    : >"$WORK/failures.txt"
    echo "run,system,metric,value" >"$RESULTS/raw.csv"
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full), runs: $RUNS, wrk -d${DUR}s, iperf3 -t $IPERF_T, idle streams: $STREAMS"
        echo "nproc: $(nproc), open files limit: $FD_LIMIT (idle streams for rathole and bore: at most $PEER_STREAMS_MAX)"
        echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "kernel: $(uname -sr)"
        echo "load average before the build: $LOAD_BEFORE_BUILD; before the measurements: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "adit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "peers: $(cargo install --list --root "$TOOLS" 2>/dev/null | grep -v '^ ' | tr -d ':' | paste -sd, | sed 's/,/, /g')"
        echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), iperf3: $(iperf3 --version | head -1 | cut -d' ' -f1-2), nginx: $("$NGINX" -v 2>&1 | cut -d/ -f2)"
    } >"$RESULTS/machine.txt"
    cat "$RESULTS/machine.txt" >&2

    start_origin

    for RUN in $(seq 1 "$RUNS"); do
        for s in $SYSTEMS; do
            run_system "$s"
        done
    done
    echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
    cp "$WORK/failures.txt" "$RESULTS/failures.txt"

    python3 "$BENCH_DIR/report.py" "$RESULTS" >"$RESULTS/table.md" || die "report.py failed"
    cat "$RESULTS/table.md"
    if [ "$QUICK" = 0 ] && [ "$SYSTEMS" = "direct adit adit-2n-holder adit-2n-forwarded rathole-tcp rathole-noise bore" ]; then
        cp "$RESULTS/results.csv" "$BENCH_DIR/results.csv"
        cp "$RESULTS/table.md" "$BENCH_DIR/results.md"
        log "copied results.csv and results.md to bench/"
    fi
}

main "$@"
exit $?
