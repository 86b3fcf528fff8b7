#!/usr/bin/env python3
"""Opens COUNT idle TCP connections through a tunnel to an idle TCP sink and reports the
resident memory of the tunnel's processes before and with them open.

The sink is a child process (so that neither process needs more than COUNT descriptors):
it accepts on 127.0.0.1:SINK_PORT, echoes what it gets (only a few connections are probed)
and otherwise holds the connections, printing how many it holds. The connections are made
round-robin to the --target-port entries (the tunnel's entries for that sink). Everything
is bounded in time; the script always exits by itself.

Prints lines for bench/run.sh to parse:
    STREAMS opened=N accepted=N failed=N probed_ok=N seconds=S
    RSS name=NAME before_kib=K with_kib=K      (summed over the --pid entries of NAME)
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


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def quiet_loop_errors(loop):
    # A full accept queue or descriptor table makes asyncio log every failed accept; the
    # counts tell the story, so keep the log short.
    seen = {"n": 0}

    def handler(loop, context):
        seen["n"] += 1
        if seen["n"] <= 3:
            print(f"streams.py: {context.get('message')}: {context.get('exception')}", file=sys.stderr)

    loop.set_exception_handler(handler)


async def sink(port, seconds):
    quiet_loop_errors(asyncio.get_running_loop())
    accepted = 0
    held = []

    async def on_conn(reader, writer):
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

    server = await asyncio.start_server(on_conn, "127.0.0.1", port, backlog=4096)
    print("listening", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        print(f"accepted {accepted}", flush=True)
        await asyncio.sleep(0.1)
    server.close()


async def client(args):
    quiet_loop_errors(asyncio.get_running_loop())
    pids = [p.split("=", 1) for p in args.pid]

    def rss_by_name():
        out = {}
        for name, pid in pids:
            out[name] = out.get(name, 0) + max(rss_kib(pid), 0)
        return out

    before = rss_by_name()
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sink-only", "--sink-port", str(args.sink_port),
        "--sink-seconds", str(args.timeout + 30),
        stdout=asyncio.subprocess.PIPE,
    )
    accepted = 0

    async def follow():
        nonlocal accepted
        while True:
            line = await child.stdout.readline()
            if not line:
                return
            if line.startswith(b"accepted "):
                accepted = int(line.split()[1])

    first = await asyncio.wait_for(child.stdout.readline(), timeout=10)
    if first.strip() != b"listening":
        print("streams.py: the sink did not start", file=sys.stderr)
        child.kill()
        return 1
    follower = asyncio.create_task(follow())

    conns = []
    failures = 0
    sem = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()
    deadline = started + args.timeout
    ports = args.target_port

    async def open_one(i):
        nonlocal failures
        async with sem:
            left = deadline - time.monotonic()
            if left <= 0:
                failures += 1
                return
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", ports[i % len(ports)]),
                    timeout=min(left, 15),
                )
                conns.append((r, w))
            except (OSError, asyncio.TimeoutError):
                failures += 1

    await asyncio.gather(*(open_one(i) for i in range(args.count)))
    # A tunnel accepts locally before it has dialled the sink: wait for the far side.
    while accepted < len(conns) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - started

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
    with_open = rss_by_name()
    print(
        f"STREAMS opened={len(conns)} accepted={accepted} failed={failures} "
        f"probed_ok={probed_ok} seconds={seconds:.2f}",
        flush=True,
    )
    for name in before:
        print(f"RSS name={name} before_kib={before[name]} with_kib={with_open[name]}", flush=True)

    for _, w in conns:
        w.close()
    child.kill()
    follower.cancel()
    await child.wait()
    await asyncio.sleep(0.5)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-port", type=int, action="append", default=[])
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60.0, help="bound for opening them all")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--pid", action="append", default=[], help="NAME=PID, repeatable")
    ap.add_argument("--sink-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sink-seconds", type=float, default=120, help=argparse.SUPPRESS)
    args = ap.parse_args()

    limit = raise_fd_limit()
    if args.sink_only:
        asyncio.run(sink(args.sink_port, args.sink_seconds))
        return 0
    if limit < args.count + 100:
        print(f"streams.py: {args.count} connections do not fit in {limit} descriptors", file=sys.stderr)
    if not args.target_port:
        ap.error("--target-port is required")
    try:
        return asyncio.run(asyncio.wait_for(client(args), timeout=args.timeout + 60))
    except asyncio.TimeoutError:
        print("streams.py: gave up", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
