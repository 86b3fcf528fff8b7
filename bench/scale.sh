#!/usr/bin/env bash
# Adit's scale scenario: one release adit-server on loopback with many tunnels.
#
#   bench/scale.sh [--tunnels N] [--clients C] [--database-url URL] [--skip-build] [--keep]
#
# Builds adit-server in release mode (unless --skip-build; CARGO_TARGET_DIR is honoured),
# starts it on 127.0.0.1 ports with SQLite in a fresh directory (or on --database-url, an
# empty PostgreSQL database), creates N tunnels
# (default 10,000) with one route each through REST with C concurrent clients (default 8;
# bench/scale.py), and reports: tunnels (with their route) created per second in each
# block of 1,000 (and the server's CPU time per creation in each), the time per page of the tunnel list (first, middle, a search, the
# dashboard's page of 50, and the whole list), and the time from starting the server
# again on that database to its edge routing a created hostname. Results:
# bench/results/scale.json and scale.md. See bench/README.md ("Scale").
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
RESULTS="$BENCH_DIR/results"

TUNNELS=10000
CLIENTS=8
SKIP_BUILD=0
KEEP=0
DATABASE_URL=""

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --tunnels) TUNNELS="${2:?--tunnels needs a number}"; shift ;;
        --clients) CLIENTS="${2:?--clients needs a number}"; shift ;;
        --database-url) DATABASE_URL="${2:?--database-url needs a URL}"; shift ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        -h | --help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
    shift
done
case "$TUNNELS$CLIENTS" in *[!0-9]*) echo "--tunnels and --clients take numbers" >&2; exit 2 ;; esac

BASE=${BENCH_PORT_BASE:-29600}
EDGE=$((BASE + 80))
TUN=$((BASE + 81))
API=$((BASE + 82))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/adit-scale.XXXXXX")
SERVER_PID=""

log() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in "$EDGE" "$TUN" "$API"; do
    if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
        die "port $port is in use (set BENCH_PORT_BASE)"
    fi
done

if [ "$SKIP_BUILD" = 0 ]; then
    log "cargo build --release -p adit-server"
    (cd "$ROOT" && cargo build --release -p adit-server) || die "release build failed"
fi
TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') \
    || TARGET="$ROOT/target"
SERVER="$TARGET/release/adit-server"
[ -x "$SERVER" ] || die "$SERVER is missing (build it, or drop --skip-build)"

start_server() {
    local db=()
    [ -n "$DATABASE_URL" ] && db=(--database-url "$DATABASE_URL")
    "$SERVER" --data-dir "$WORK/data" "${db[@]}" \
        --edge-addr "127.0.0.1:$EDGE" --edge-tls-addr off \
        --tunnel-addr "127.0.0.1:$TUN" --api-addr "127.0.0.1:$API" \
        --zone localhost --loglevel warn >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}

# Milliseconds from `$2` (ns since the epoch, taken just before the server was started)
# until the edge routes `$1` (any answer but 404 or none: 502 here, as no connector runs),
# polling every 5 ms; empty after 60 s.
ms_until_routed() {
    python3 - "$EDGE" "$1" "$2" <<'PY'
import http.client, sys, time
port, host, started_ns = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
start = started_ns / 1e9
while time.time() - start < 60:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/", headers={"Host": host})
        status = conn.getresponse().status
        conn.close()
        if status != 404:
            print(round((time.time() - start) * 1000))
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
PY
}

log "starting $SERVER in $WORK"
start_server
for _ in $(seq 300); do
    [ -s "$WORK/data/admin-token" ] && curl -sf -o /dev/null \
        -H "Authorization: Bearer $(cat "$WORK/data/admin-token")" \
        "http://127.0.0.1:$API/api/v1/tunnels?page=1" && break
    sleep 0.1
done
TOKEN=$(cat "$WORK/data/admin-token" 2>/dev/null) || die "the server did not start (see $WORK/server.log)"

log "creating $TUNNELS tunnels with a route each, $CLIENTS clients"
CREATE=$(python3 "$BENCH_DIR/scale.py" create --api "http://127.0.0.1:$API" --token "$TOKEN" \
    --tunnels "$TUNNELS" --clients "$CLIENTS" --server-pid "$SERVER_PID") || die "creating tunnels failed"
log "timing pages of the list"
LIST=$(python3 "$BENCH_DIR/scale.py" list --api "http://127.0.0.1:$API" --token "$TOKEN" \
    --tunnels "$TUNNELS") || die "listing failed"

LAST=$(printf 'scale-%05d.localhost' $((TUNNELS - 1)))
log "restarting on the same database"
stop_server
STARTED_NS=$(date +%s%N)
start_server
RESTART_MS=$(ms_until_routed "$LAST" "$STARTED_NS")
[ -n "$RESTART_MS" ] || die "the restarted server did not route $LAST within 60 s"
stop_server

mkdir -p "$RESULTS"
BACKEND=sqlite
[ -n "$DATABASE_URL" ] && BACKEND=postgres
python3 - "$RESULTS" "$TUNNELS" "$CLIENTS" "$RESTART_MS" "$CREATE" "$LIST" "$BACKEND" <<'PY'
import json, sys
results, tunnels, clients, restart_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
create, listing, backend = json.loads(sys.argv[5]), json.loads(sys.argv[6]), sys.argv[7]
out = {"tunnels": tunnels, "clients": clients, "backend": backend, "create": create,
       "list": listing, "restart_to_routing_ms": restart_ms}
with open(f"{results}/scale.json", "w") as f:
    json.dump(out, f, indent=2)
blocks = create["rate_per_1000"]
lines = [
    f"| measure ({tunnels:,} tunnels, one route each, {clients} REST clients, {backend}) | value |",
    "| --- | --- |",
    f"| created (errors) | {create['created']:,} ({create['error_count']}) in {create['seconds']} s, {create['rate_overall']}/s overall |",
]
if blocks:
    lines.append(f"| tunnels+route per second, first 1,000 | {blocks[0]} |")
    lines.append(f"| tunnels+route per second, last 1,000 | {blocks[-1]} |")
    lines.append(f"| per 1,000, in order | {', '.join(str(b) for b in blocks)} |")
cpu = create.get("server_cpu_ms_per_1000") or []
if cpu:
    lines.append(f"| server CPU ms per tunnel+route, first 1,000 / last 1,000 | {cpu[0]} / {cpu[-1]} |")
    lines.append(f"| server CPU ms per tunnel+route per 1,000, in order | {', '.join(str(c) for c in cpu)} |")
for key, label in [("first_page", "first page (20)"), ("middle_page", "middle page (20)"),
                   ("search", "search `name=scale-0099`"), ("dashboard_page", "dashboard page (50)"),
                   ("whole_list", "whole list (no paging)")]:
    r = listing[key]
    lines.append(f"| `GET {r['path']}` — {label}, ms median / max | {r['median_ms']} / {r['max_ms']} |")
lines.append(f"| restart to routing a created hostname, ms | {restart_ms} |")
text = "\n".join(lines) + "\n"
with open(f"{results}/scale.md", "w") as f:
    f.write(text)
print(text)
PY
