#!/usr/bin/env python3
"""Opens COUNT idle TCP connections through a tunnel to an idle TCP sink and reports the
resident memory of the tunnel's processes before and with them open.

The sink runs in this process: it accepts on 127.0.0.1:SINK_PORT, echoes what it gets
(only a few connections are probed) and otherwise holds the connections. The connections
are made to 127.0.0.1:TARGET_PORT, the tunnel's entry for that sink. Everything is bounded
in time; the script always exits by itself.

Prints lines for bench/run.sh to parse:
    STREAMS opened=N accepted=N probed_ok=N seconds=S
    RSS name=NAME pid=PID before_kib=K with_kib=K
"""

import argparse
import asyncio
import resource
import sys
import time


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return -1
    return -1


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60.0, help="bound for the whole opening")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--pid", action="append", default=[], help="NAME=PID, repeatable")
    args = ap.parse_args()

    want = args.count * 2 + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
        except (ValueError, OSError) as e:
            print(f"streams.py: cannot raise the fd limit to {want}: {e}", file=sys.stderr)

    pids = [p.split("=", 1) for p in args.pid]
    before = {name: rss_kib(pid) for name, pid in pids}

    accepted = 0
    held = []

    async def on_sink(reader, writer):
        nonlocal accepted
        accepted += 1
        held.append(writer)
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    server = await asyncio.start_server(on_sink, "127.0.0.1", args.sink_port, backlog=4096)
    conns = []
    failures = 0
    sem = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()
    deadline = started + args.timeout

    async def open_one():
        nonlocal failures
        async with sem:
            left = deadline - time.monotonic()
            if left <= 0:
                failures += 1
                return
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", args.target_port), timeout=min(left, 15)
                )
                conns.append((r, w))
            except (OSError, asyncio.TimeoutError):
                failures += 1

    await asyncio.gather(*(open_one() for _ in range(args.count)))
    # The tunnel accepts locally before it has dialled the sink: wait for the far side.
    while accepted < len(conns) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started

    # Probe a few streams end to end (the sink echoes).
    probed_ok = 0
    for r, w in conns[: min(10, len(conns))]:
        try:
            w.write(b"ping\n")
            await w.drain()
            if await asyncio.wait_for(r.readexactly(5), timeout=5) == b"ping\n":
                probed_ok += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass

    await asyncio.sleep(args.settle)
    with_open = {name: rss_kib(pid) for name, pid in pids}
    print(
        f"STREAMS opened={len(conns)} accepted={accepted} failed={failures} "
        f"probed_ok={probed_ok} seconds={seconds:.2f}",
        flush=True,
    )
    for name, pid in pids:
        print(f"RSS name={name} pid={pid} before_kib={before[name]} with_kib={with_open[name]}", flush=True)

    for _, w in conns:
        w.close()
    server.close()
    for w in held:
        w.close()
    await asyncio.sleep(0.5)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), timeout=180))
    except asyncio.TimeoutError:
        print("streams.py: gave up after 180 s", file=sys.stderr)
        sys.exit(1)
