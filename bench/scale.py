#!/usr/bin/env python3
"""The scale scenario's client: creates tunnels with one route each through the REST API
with several concurrent clients, then times pages of the tunnel list.

    scale.py create --api URL --token T --tunnels N --clients C [--start K] [--server-pid P]
    scale.py list   --api URL --token T --tunnels N [--repeat R]

Prints one JSON object on stdout. Standard library only.
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import os
import urllib.parse


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads) so far, in seconds."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    """One keep-alive HTTP/1.1 connection to the API."""

    def __init__(self, api, token):
        url = urllib.parse.urlsplit(api)
        self.host, self.port = url.hostname, url.port
        self.headers = {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
        }
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                data = None if body is None else json.dumps(body).encode()
                self.conn.request(method, path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                payload = response.read()
                return response.status, payload
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def create(args):
    """Creates tunnels start..start+N, each with the route <name>.localhost; the time each
    one finished, in the order they finished."""
    lock = threading.Lock()
    next_index = [args.start]
    end = args.start + args.tunnels
    done = []
    errors = []

    def worker():
        client = Client(args.api, args.token)
        while True:
            with lock:
                index = next_index[0]
                if index >= end:
                    return
                next_index[0] += 1
            name = f"scale-{index:05d}"
            status, body = client.call("POST", "/api/v1/tunnels", {"name": name})
            if status != 201:
                errors.append(f"create {name}: {status} {body[:200]!r}")
                continue
            tunnel = json.loads(body)["id"]
            status, body = client.call(
                "POST",
                f"/api/v1/tunnels/{tunnel}/routes",
                {"hostname": f"{name}.localhost"},
            )
            if status != 201:
                errors.append(f"route {name}: {status} {body[:200]!r}")
                continue
            finished = time.monotonic()
            with lock:
                done.append(finished)
                if len(done) % 1000 == 0:
                    cpu.append(cpu_seconds(args.server_pid))

    cpu = [cpu_seconds(args.server_pid)]
    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.sort()
    # Creations per second in each block of 1,000 (by the order they finished).
    blocks = []
    previous = started
    for k in range(999, len(done), 1000):
        blocks.append(round(1000 / (done[k] - previous), 1))
        previous = done[k]
    total = time.monotonic() - started
    # The server's CPU per tunnel+route in each block: unlike the rate, it does not move
    # when something else on the machine takes the CPU.
    cpu_ms = []
    if args.server_pid is not None:
        cpu_ms = [round((b - a) * 1000 / 1000, 3) for a, b in zip(cpu, cpu[1:])]
    return {
        "server_cpu_ms_per_1000": cpu_ms,
        "created": len(done),
        "errors": errors[:10],
        "error_count": len(errors),
        "seconds": round(total, 2),
        "rate_overall": round(len(done) / total, 1) if total else None,
        "rate_per_1000": blocks,
    }


def timed(client, path, repeat):
    """Milliseconds per GET of `path` (median and slowest of `repeat`), and its answer."""
    samples = []
    body = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        status, body = client.call("GET", path)
        samples.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"GET {path}: {status} {body[:200]!r}")
    return {
        "path": path,
        "median_ms": round(statistics.median(samples), 2),
        "max_ms": round(max(samples), 2),
    }, json.loads(body)


def listing(args):
    client = Client(args.api, args.token)
    per_page = 20
    middle = max(1, args.tunnels // per_page // 2)
    out = {}
    for key, path in [
        ("first_page", f"/api/v1/tunnels?page=1&per_page={per_page}"),
        ("middle_page", f"/api/v1/tunnels?page={middle}&per_page={per_page}"),
        ("search", "/api/v1/tunnels?name=scale-0099"),
        ("dashboard_page", "/api/v1/tunnels?page=1&per_page=50"),
    ]:
        result, body = timed(client, path, args.repeat)
        result["total_count"] = body["result_info"]["total_count"]
        result["count"] = body["result_info"]["count"]
        out[key] = result
    result, body = timed(client, "/api/v1/tunnels", 3)
    result["count"] = len(body)
    out["whole_list"] = result
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["create", "list"])
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tunnels", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    result = create(args) if args.what == "create" else listing(args)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
