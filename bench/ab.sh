#!/usr/bin/env bash
# Two Adit stacks side by side, for one change at a time: A and B each run an adit-server and
# a connector (their own builds or their own environment) behind one nginx, and wrk measures
# them in alternating rounds, so background load hits both alike.
#
#   bench/ab.sh [--a-bin DIR] [--b-bin DIR] [--a-env "K=V …"] [--b-env "K=V …"]
#               [--rounds N] [--duration S] [--bulk [--streams N]] [--instructions N [--keep DIR]]
#               [--hold]
#
# DIR holds `adit-server` and `adit` (default: $CARGO_TARGET_DIR/release, else target/release;
# build them first). Each round measures small HTTP (wrk, 64 connections: req/s and the
# edge's + connector's CPU per request) and the round trip (1 connection, p50), A then B;
# with --bulk also iperf3 through `adit access tcp`, one stream or --streams N (MB/s, CPU-s/GB of
# edge + connector + `adit access`, and of `adit access` alone). Prints each stack's idle
# RSS (as bench/run.sh reads it), each round, the medians and the RSS after the load.
# With --instructions N, edge and connector run under callgrind instead and each stack
# answers N requests one after another (after 200 to warm up): the user-space
# instructions per request of each process, which the machine's load does not move;
# --keep DIR copies their callgrind files to DIR/A and DIR/B (callgrind_annotate reads them).
# With --hold, the stacks start, their PIDs and ports are printed, and they stay up until the
# script is stopped: for perf or strace by hand.
# Ports: BENCH_PORT_BASE (default 31000) and up.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEFAULT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
A_BIN=$DEFAULT_BIN B_BIN=$DEFAULT_BIN A_ENV="" B_ENV="" ROUNDS=5 DURATION=4 BULK=0 STREAMS=1 INSTRUCTIONS=0 KEEP="" HOLD=0

while [ $# -gt 0 ]; do
    case "$1" in
        --a-bin) A_BIN=${2:?}; shift ;;
        --b-bin) B_BIN=${2:?}; shift ;;
        --a-env) A_ENV=${2?}; shift ;;
        --b-env) B_ENV=${2?}; shift ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --duration) DURATION=${2:?}; shift ;;
        --bulk) BULK=1 ;;
        --streams) STREAMS=${2:?}; shift ;;
        --instructions) INSTRUCTIONS=${2:?}; shift ;;
        --keep) KEEP=${2:?}; shift ;;
        --hold) HOLD=1 ;;
        -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ROUNDS$DURATION$STREAMS$INSTRUCTIONS" in *[!0-9]*) echo "--rounds, --duration, --streams and --instructions take whole numbers" >&2; exit 2 ;; esac
for bin in "$A_BIN" "$B_BIN"; do
    [ -x "$bin/adit-server" ] && [ -x "$bin/adit" ] || { echo "no adit-server/adit in $bin (build with cargo build --release)" >&2; exit 1; }
done
TOOLS="wrk curl"
[ "$BULK" = 1 ] && TOOLS="$TOOLS iperf3 python3"
[ "$INSTRUCTIONS" -gt 0 ] && TOOLS="$TOOLS valgrind callgrind_control python3"
for tool in $TOOLS; do command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install $tool)" >&2; exit 1; }; done
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
BASE=${BENCH_PORT_BASE:-31000}

# The origin: nginx, one worker, a 100-byte file.
start_origin "$WORK" "$BASE"

if [ "$BULK" = 1 ]; then
    iperf3 -s -B 127.0.0.1 -p $((BASE + 1)) >/dev/null 2>&1 &
    PIDS+=($!)
fi

code_of() { curl -s -o /dev/null --max-time 1 -w '%{http_code}' -H 'Host: bench.localhost' "http://127.0.0.1:$1/small.txt"; }

# stack NAME BIN "ENV" EDGE-PORT: a server and a connected connector (with --bulk also
# `adit access tcp` on EDGE-PORT+3, to iperf3); sets SERVER_NAME, CONNECTOR_NAME and
# ACCESS_NAME to their PIDs.
stack() {
    local name=$1 bin=$2 env=$3 edge=$4 d="$WORK/$1" i token under=()
    mkdir -p "$d/home"
    [ "$INSTRUCTIONS" -gt 0 ] && under=(valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$d/callgrind.%p")
    # shellcheck disable=SC2086 # ENV is a list of K=V words
    env $env "${under[@]}" "$bin/adit-server" --data-dir "$d/server" --edge-addr "127.0.0.1:$edge" \
        --edge-tls-addr off --tunnel-addr "127.0.0.1:$((edge + 1))" \
        --api-addr "127.0.0.1:$((edge + 2))" --zone localhost >"$d/server.log" 2>&1 &
    PIDS+=($!)
    printf -v "SERVER_$name" %s $!
    for i in $(seq 1 300); do
        [ -s "$d/server/admin-token" ] && curl -sf -o /dev/null \
            -H "Authorization: Bearer $(cat "$d/server/admin-token")" \
            "http://127.0.0.1:$((edge + 2))/api/v1/tunnels" && break
        sleep 0.1
    done
    token=$(cat "$d/server/admin-token") || { echo "$name: adit-server did not start (see $d/server.log)" >&2; exit 1; }
    local cli=(env HOME="$d/home" ADIT_API_URL="http://127.0.0.1:$((edge + 2))" ADIT_API_TOKEN="$token" "$bin/adit")
    "${cli[@]}" tunnel create bench --cred-file "$d/cred.json" >/dev/null &&
        "${cli[@]}" tunnel route dns bench bench.localhost >/dev/null &&
        "${cli[@]}" tunnel route dns bench tcp.localhost >/dev/null ||
        { echo "$name: could not create the tunnel" >&2; exit 1; }
    printf 'tunnel: bench\ncredentials-file: %s\ningress:\n  - hostname: bench.localhost\n    service: http://127.0.0.1:%s\n  - hostname: tcp.localhost\n    service: tcp://127.0.0.1:%s\n  - service: http_status:404\n' \
        "$d/cred.json" "$BASE" $((BASE + 1)) >"$d/config.yml"
    # shellcheck disable=SC2086
    env $env HOME="$d/home" "${under[@]}" "$bin/adit" tunnel --config "$d/config.yml" run >"$d/connector.log" 2>&1 &
    PIDS+=($!)
    printf -v "CONNECTOR_$name" %s $!
    for i in $(seq 1 300); do
        [ "$(code_of "$edge")" = 200 ] && break
        sleep 0.05
    done
    [ "$(code_of "$edge")" = 200 ] || { echo "$name: no request through the tunnel within 15 s (see $d/*.log)" >&2; exit 1; }
    [ "$BULK" = 1 ] || return 0
    # shellcheck disable=SC2086
    env $env HOME="$d/home" "$bin/adit" access tcp --hostname tcp.localhost \
        --edge "http://127.0.0.1:$edge" --url "127.0.0.1:$((edge + 3))" >"$d/access.log" 2>&1 &
    PIDS+=($!)
    printf -v "ACCESS_$name" %s $!
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$((edge + 3))") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$name: adit access tcp did not listen (see $d/access.log)" >&2
    exit 1
}

# CPU ticks (user + system) of the given PIDs.
ticks() {
    local sum=0 pid
    for pid in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)
# CPU-s/GB of TICKS over a bulk measurement at MBPS MB/s.
cpu_s_per_gb() { awk -v t="$1" -v mb="$2" -v d="$DURATION" -v hz="$HZ" 'BEGIN {printf "%.2f", (t / hz) / (mb * d / 1000)}'; }

# The edge port of stack NAME; its tunnel listener, API and `adit access` take the next three.
edge_port() { if [ "$1" = A ]; then echo $((BASE + 100)); else echo $((BASE + 200)); fi; }

# Each stack runs copies made just now, so both binaries' files are equally fresh in the page
# cache: a file written moments ago reads ~0.3 MiB higher in idle RSS than the same bytes
# written earlier (bench/README.md, issue 14 step 32), which would tilt the comparison.
for name in A B; do
    bin_var="${name}_BIN"
    mkdir -p "$WORK/$name-bin" && cp "${!bin_var}/adit-server" "${!bin_var}/adit" "$WORK/$name-bin/" ||
        { echo "could not copy ${!bin_var}" >&2; exit 1; }
done
stack A "$WORK/A-bin" "$A_ENV" "$(edge_port A)"
stack B "$WORK/B-bin" "$B_ENV" "$(edge_port B)"
echo "A: $A_BIN ${A_ENV:-(no extra environment)}"
echo "B: $B_BIN ${B_ENV:-(no extra environment)}"
if [ "$HOLD" = 1 ]; then
    for name in A B; do
        server_var="SERVER_$name" connector_var="CONNECTOR_$name" access_var="ACCESS_$name"
        edge=$(edge_port "$name")
        access=""
        [ "$BULK" = 1 ] && access=", adit access PID ${!access_var} (port $((edge + 3)))"
        echo "$name: edge PID ${!server_var} (port $edge), connector PID ${!connector_var}$access"
    done
    echo "origin: nginx on port $BASE$([ "$BULK" = 1 ] && echo ", iperf3 -s on port $((BASE + 1))"); holding until stopped"
    sleep infinity &
    PIDS+=($!)
    wait $!
    exit 0
fi
if [ "$INSTRUCTIONS" -gt 0 ]; then
    # N requests on one keep-alive connection, each answered 200 with the 100-byte file.
    requests() {
        python3 - "$1" "$2" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    conn.request("GET", "/small.txt", headers={"Host": "bench.localhost"})
    response = conn.getresponse()
    if response.status != 200 or len(response.read()) != 100:
        sys.exit(f"unexpected answer: {response.status}")
PY
    }
    # per_request NAME PID: instructions per request in the first dump of that process.
    per_request() { awk -v n="$INSTRUCTIONS" '/^totals:/ {printf "%.0f", $2 / n}' "$WORK/$1/callgrind.$2.1"; }
    printf '%-2s %22s %22s\n' "" "edge instr/request" "connector instr/request"
    for name in A B; do
        edge=$(edge_port "$name")
        server_var="SERVER_$name" connector_var="CONNECTOR_$name"
        requests "$edge" 200 || exit 1
        for pid in "${!server_var}" "${!connector_var}"; do callgrind_control -z "$pid" >/dev/null 2>&1; done
        requests "$edge" "$INSTRUCTIONS" || exit 1
        for pid in "${!server_var}" "${!connector_var}"; do callgrind_control -d "$pid" >/dev/null 2>&1; done
        printf '%-2s %22s %22s\n' "$name" "$(per_request "$name" "${!server_var}")" "$(per_request "$name" "${!connector_var}")"
        if [ -n "$KEEP" ]; then
            mkdir -p "$KEEP/$name" &&
                cp "$WORK/$name/callgrind.${!server_var}.1" "$KEEP/$name/edge.callgrind" &&
                cp "$WORK/$name/callgrind.${!connector_var}.1" "$KEEP/$name/connector.callgrind"
        fi
    done
    exit 0
fi
# Idle RSS as bench/run.sh reads it: a second after the stack first answered.
sleep 1
for name in A B; do
    server_var="SERVER_$name" connector_var="CONNECTOR_$name"
    echo "$name: RSS edge $(awk '/VmRSS/ {print $2}' "/proc/${!server_var}/status") KiB, connector $(awk '/VmRSS/ {print $2}' "/proc/${!connector_var}/status") KiB idle"
done
ROW='%-6s %-2s %10s %14s %12s %10s %10s %10s\n'
# shellcheck disable=SC2059 # one format for every row
printf "$ROW" round "" "req/s" "CPU-µs/req" "RTT p50 µs" "bulk MB/s" "CPU-s/GB" "access"
declare -A SERIES
for round in $(seq 1 "$ROUNDS"); do
    for name in A B; do
        edge=$(edge_port "$name")
        server_var="SERVER_$name" connector_var="CONNECTOR_$name"
        before=$(ticks "${!server_var}" "${!connector_var}")
        out=$(wrk -t2 -c64 -d"${DURATION}s" -H 'Host: bench.localhost' "http://127.0.0.1:$edge/small.txt")
        after=$(ticks "${!server_var}" "${!connector_var}")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        rate=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
        cpu=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
        rtt=$(wrk -t1 -c1 -d2s --latency -H 'Host: bench.localhost' "http://127.0.0.1:$edge/small.txt" |
            awk '$1 == "50%" {v = $2; if (v ~ /ms$/) v = v * 1000; else v = v + 0; printf "%.0f", v}')
        mbps=- per_gb=- access_gb=-
        if [ "$BULK" = 1 ]; then
            access_var="ACCESS_$name"
            before=$(ticks "${!server_var}" "${!connector_var}") access_before=$(ticks "${!access_var}")
            mbps=$(timeout $((DURATION + 15)) iperf3 -c 127.0.0.1 -p $((edge + 3)) -P "$STREAMS" -t "$DURATION" -J |
                python3 -c 'import json, sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bytes"] / 1e6 / '"$DURATION"'))')
            after=$(ticks "${!server_var}" "${!connector_var}") access_after=$(ticks "${!access_var}")
            access=$((access_after - access_before))
            per_gb=$(cpu_s_per_gb $((after - before + access)) "$mbps")
            access_gb=$(cpu_s_per_gb "$access" "$mbps")
        fi
        # shellcheck disable=SC2059
        printf "$ROW" "$round" "$name" "$rate" "$cpu" "$rtt" "$mbps" "$per_gb" "$access_gb"
        SERIES[$name.rate]+="$rate " SERIES[$name.cpu]+="$cpu " SERIES[$name.rtt]+="$rtt "
        SERIES[$name.mbps]+="$mbps " SERIES[$name.gb]+="$per_gb " SERIES[$name.access]+="$access_gb "
    done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for name in A B; do
    # shellcheck disable=SC2059
    printf "$ROW" median "$name" "$(median "${SERIES[$name.rate]}")" "$(median "${SERIES[$name.cpu]}")" \
        "$(median "${SERIES[$name.rtt]}")" "$(median "${SERIES[$name.mbps]}")" "$(median "${SERIES[$name.gb]}")" \
        "$(median "${SERIES[$name.access]}")"
done
for name in A B; do
    server_var="SERVER_$name" connector_var="CONNECTOR_$name"
    echo "$name: RSS edge $(awk '/VmRSS/ {print $2}' "/proc/${!server_var}/status") KiB, connector $(awk '/VmRSS/ {print $2}' "/proc/${!connector_var}/status") KiB after the load"
done
