#!/usr/bin/env bash
# Writes server/link-order.txt and agent/link-order.txt: the functions of `adit-server` and
# `adit` that a running tunnel executes: first what an idle edge and connector ran
# (start-up, plain requests, 6 s of timers), then the rest, each part costliest first.
# Release builds for x86_64 Linux link those functions together (server/build.rs,
# agent/build.rs), so a process keeps only that part of its code resident (bench/README.md,
# issue 14 steps 19 and 21).
#
#   bench/link-order.sh [--bin DIR]
#
# DIR holds release builds of `adit-server` and `adit` (default: $CARGO_TARGET_DIR/release,
# else target/release). Under callgrind from their first instruction: an edge with its
# plain and HTTPS listeners, the CLI creating a tunnel and its routes, a connector, requests
# through both listeners, `adit access tcp` carrying 50 MB to a TCP sink, then 6 s idle (the
# timers: keepalive pings, the node list); then each process is stopped and the names of its
# functions that ran are kept. Build both with `cargo build --release -p adit-server -p
# adit-agent` (the packages built together decide the dependencies' features, and so the
# names), and run it again after editing code that runs, or a change of toolchain or
# dependencies (the names carry hashes that follow them); then build again. Names that no
# longer exist are skipped at link time, and what is new is placed after the list, so an
# old list only loses effect (64 KiB resident per function it misses), never breaks a build.
# Needs valgrind (with callgrind_control), nginx, curl and python3.
# Ports: BENCH_PORT_BASE (default 31000) and up.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=${2:?}; shift ;;
        -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$BIN/adit-server" ] && [ -x "$BIN/adit" ] || { echo "no adit-server/adit in $BIN (cargo build --release first)" >&2; exit 1; }
for tool in valgrind callgrind_control curl python3 nm; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
BASE=${BENCH_PORT_BASE:-31000} EDGE=$((${BENCH_PORT_BASE:-31000} + 100))
die() { echo "$*" >&2; exit 1; }

mkdir -p "$WORK/home"
start_origin "$WORK" "$BASE"
# The TCP origin: a sink that counts what it reads and answers the count when the sender
# half-closes.
python3 - $((BASE + 1)) <<'PY' &
import socket, sys

server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    conn, _ = server.accept()
    total = 0
    while data := conn.recv(65536):
        total += len(data)
    conn.sendall(f"{total}\n".encode())
    conn.close()
PY
PIDS+=($!)

under() { # NAME COMMAND…: COMMAND under callgrind, its file named NAME
    exec valgrind --tool=callgrind --demangle=no --compress-strings=no --dump-instr=no \
        --callgrind-out-file="$WORK/$1.callgrind" "${@:2}"
}
code_of() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H 'Host: bench.localhost' "http://127.0.0.1:$EDGE/small.txt"; }

under edge "$BIN/adit-server" --data-dir "$WORK/server" --edge-addr "127.0.0.1:$EDGE" \
    --edge-tls-addr "127.0.0.1:$((EDGE + 4))" --tunnel-addr "127.0.0.1:$((EDGE + 1))" \
    --api-addr "127.0.0.1:$((EDGE + 2))" --zone localhost >"$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 1 600); do
    [ -s "$WORK/server/admin-token" ] && curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$WORK/server/admin-token")" \
        "http://127.0.0.1:$((EDGE + 2))/api/v1/tunnels" && break
    sleep 0.1
done
TOKEN=$(cat "$WORK/server/admin-token") || die "adit-server did not start (see $WORK/server.log)"
CLI=(env HOME="$WORK/home" ADIT_API_URL="http://127.0.0.1:$((EDGE + 2))" ADIT_API_TOKEN="$TOKEN" "$BIN/adit")
"${CLI[@]}" tunnel create bench --cred-file "$WORK/cred.json" >/dev/null &&
    "${CLI[@]}" tunnel route dns bench bench.localhost >/dev/null &&
    "${CLI[@]}" tunnel route dns bench tcp.localhost >/dev/null || die "could not create the tunnel"
printf 'tunnel: bench\ncredentials-file: %s\ningress:\n  - hostname: bench.localhost\n    service: http://127.0.0.1:%s\n  - hostname: tcp.localhost\n    service: tcp://127.0.0.1:%s\n  - service: http_status:404\n' \
    "$WORK/cred.json" "$BASE" $((BASE + 1)) >"$WORK/config.yml"
HOME="$WORK/home" under connector "$BIN/adit" tunnel --config "$WORK/config.yml" run >"$WORK/connector.log" 2>&1 &
CONNECTOR=$!
PIDS+=("$CONNECTOR")
for _ in $(seq 1 600); do
    [ "$(code_of)" = 200 ] && break
    sleep 0.1
done
[ "$(code_of)" = 200 ] || die "no request through the tunnel within 60 s (see $WORK/*.log)"
for _ in $(seq 1 50); do code_of >/dev/null; done
# What an idle connector and edge have run (start-up, plain requests, 6 s of timers) goes
# into a first part, ordered first: that is the code an idle process keeps resident, and
# placed together it stays together whatever the costs of the rest turn out to be.
sleep 6
for pid in "$SERVER" "$CONNECTOR"; do callgrind_control -d "$pid" >/dev/null 2>&1 || die "callgrind_control failed"; done
for _ in $(seq 1 5); do
    curl -sk -o /dev/null --max-time 5 --resolve "bench.localhost:$((EDGE + 4)):127.0.0.1" \
        "https://bench.localhost:$((EDGE + 4))/small.txt"
done
HOME="$WORK/home" under access "$BIN/adit" access tcp --hostname tcp.localhost \
    --edge "http://127.0.0.1:$EDGE" --url "127.0.0.1:$((EDGE + 3))" >"$WORK/access.log" 2>&1 &
ACCESS=$!
PIDS+=("$ACCESS")
for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$((EDGE + 3))") 2>/dev/null && break
    sleep 0.1
done
python3 - $((EDGE + 3)) <<'PY' || die "50 MB through adit access failed (see $WORK/*.log)"
import socket, sys

conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
chunk = b"a" * 65536
for _ in range(800):
    conn.sendall(chunk)
conn.shutdown(socket.SHUT_WR)
answer = conn.makefile().readline().strip()
if answer != str(800 * 65536):
    sys.exit(f"the origin read {answer!r} bytes, not {800 * 65536}")
PY
sleep 6
# SIGTERM (a background job ignores SIGINT): each stops as under a service manager, and
# callgrind writes its file.
kill -TERM "$SERVER" "$CONNECTOR" "$ACCESS"
wait "$SERVER" "$CONNECTOR" "$ACCESS" 2>/dev/null

write_order() { # BINARY OUT CALLGRIND…
    python3 - "$@" <<'PY'
import collections, subprocess, sys

binary, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
# Self cost per function and file: the cost lines under `fn=`, except the one after each
# `calls=` (that one is the callee's inclusive cost).
costs = []
for path in files:
    cost = collections.Counter()
    fn, after_call = None, False
    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn, after_call = line[3:].rstrip("\n"), False
        elif line.startswith("calls="):
            after_call = True
        elif fn and line[:1] and line[0] in "0123456789+-*":
            if after_call:
                after_call = False
            else:
                cost[fn] += int(line.split()[1])
    costs.append(cost)
defined = set()
symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
for line in symbols.stdout.splitlines():
    fields = line.split()
    if len(fields) == 3 and fields[1] in "tTwW":
        defined.add(fields[2])
# The first file's functions first (what an idle process ran, then the rest of the run; for
# `adit`, the connector's before `adit access`'s, so a connector keeps only its own
# resident), each file's costliest first.
names, seen = [], set()
for cost in costs:
    for name, _ in cost.most_common():
        if name in defined and name not in seen:
            names.append(name)
            seen.add(name)
if len(names) < 500:
    sys.exit(f"only {len(names)} functions of {binary} ran: was it built without symbols?")
with open(out, "w") as f:
    f.write("# Written by bench/link-order.sh: see that script and build.rs beside this file.\n")
    f.write("\n".join(names) + "\n")
print(f"{out}: {len(names)} functions")
PY
}
# The dump made `NAME.callgrind.1` (up to the idle part); the rest is in `NAME.callgrind`.
write_order "$BIN/adit-server" "$ROOT/server/link-order.txt" "$WORK/edge.callgrind.1" "$WORK/edge.callgrind" &&
    write_order "$BIN/adit" "$ROOT/agent/link-order.txt" "$WORK/connector.callgrind.1" \
        "$WORK/connector.callgrind" "$WORK/access.callgrind"
