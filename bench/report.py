#!/usr/bin/env python3
"""Aggregates bench/results/raw.csv (run,system,metric,value) into results.csv (median,
min, max per system and metric, with ratios to direct and to rathole-tcp) and prints the
markdown tables, including the checks of Adit's targets: issue 4's (section 6, against
direct) and issue 14's (against the better of rathole-tcp and bore on each line)."""

import csv
import statistics
import sys
from pathlib import Path

SYSTEMS = ["direct", "adit", "adit-2n-holder", "adit-2n-forwarded", "rathole-tcp", "rathole-noise", "bore"]

# name: (label, unit, higher is better, digits)
METRICS = {
    "http_small_rps": ("small HTTP, 64 conns", "req/s", True, 0),
    "http_small_p50_us": ("small HTTP p50", "µs", False, 0),
    "http_small_p99_us": ("small HTTP p99", "µs", False, 0),
    "http_small_cpu_us_per_req": ("small HTTP tunnel CPU", "CPU-µs/req", False, 1),
    "rtt_p50_us": ("round trip p50, 1 conn", "µs", False, 0),
    "rtt_p99_us": ("round trip p99, 1 conn", "µs", False, 0),
    "mib_MBps": ("1 MiB downloads, 4 conns", "MB/s", True, 0),
    "mib_cpu_s_per_GB": ("1 MiB tunnel CPU", "CPU-s/GB", False, 2),
    "newconn_cps": ("new connections (Connection: close)", "conn/s", True, 0),
    "newconn_cpu_us_per_conn": ("new connections tunnel CPU", "CPU-µs/conn", False, 1),
    "http_bulk_MBps": ("HTTP 256 MiB download (curl)", "MB/s", True, 0),
    "http_bulk_cpu_s_per_GB": ("HTTP 256 MiB tunnel CPU", "CPU-s/GB", False, 2),
    "tcp1_MBps": ("bulk TCP, 1 stream", "MB/s", True, 0),
    "tcp1_cpu_s_per_GB": ("bulk TCP 1 stream tunnel CPU", "CPU-s/GB", False, 2),
    "tcp1_access_cpu_s_per_GB": ("… + `adit access` CPU", "CPU-s/GB", False, 2),
    "tcp1R_MBps": ("bulk TCP, 1 stream reverse (-R)", "MB/s", True, 0),
    "tcp1R_cpu_s_per_GB": ("bulk TCP -R tunnel CPU", "CPU-s/GB", False, 2),
    "tcp1R_access_cpu_s_per_GB": ("… + `adit access` CPU", "CPU-s/GB", False, 2),
    "tcp8_MBps": ("bulk TCP, 8 streams (-P 8)", "MB/s", True, 0),
    "tcp8_cpu_s_per_GB": ("bulk TCP -P 8 tunnel CPU", "CPU-s/GB", False, 2),
    "tcp8_access_cpu_s_per_GB": ("… + `adit access` CPU", "CPU-s/GB", False, 2),
    "rss_idle_server_MiB": ("RSS idle, server/edge", "MiB", False, 1),
    "rss_idle_client_MiB": ("RSS idle, client/connector", "MiB", False, 1),
    "rss_load_server_MiB": ("RSS peak under load, server/edge", "MiB", False, 1),
    "rss_load_client_MiB": ("RSS peak under load, client/connector", "MiB", False, 1),
    "rss_load_access_MiB": ("RSS peak under load, `adit access`", "MiB", False, 1),
    "rss_streams_server_MiB": ("RSS with idle streams, server/edge", "MiB", False, 1),
    "rss_streams_client_MiB": ("RSS with idle streams, client/connector", "MiB", False, 1),
    "rss_streams_access_MiB": ("RSS with idle streams, `adit access`", "MiB", False, 1),
    "stream_server_KiB": ("per idle stream, server/edge", "KiB", False, 2),
    "stream_client_KiB": ("per idle stream, client/connector", "KiB", False, 2),
    "stream_access_KiB": ("per idle stream, `adit access`", "KiB", False, 2),
    "streams_wanted": ("idle streams opened", "streams", True, 0),
    "streams_open": ("idle streams that reached the sink", "streams", True, 0),
    "streams_open_seconds": ("time to open the idle streams", "s", False, 1),
    "loadavg_1m": ("load average (1 min) when the system started", "", False, 2),
    "first_request_ms": ("start → first request served", "ms", False, 0),
    "http_small_errors": ("errors: small HTTP", "count", False, 0),
    "rtt_errors": ("errors: round trip", "count", False, 0),
    "mib_errors": ("errors: 1 MiB", "count", False, 0),
    "newconn_errors": ("errors: new connections", "count", False, 0),
}


def fmt(value, digits):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.{digits}f}"


def main():
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    samples = {}
    runs = set()
    with open(results / "raw.csv") as f:
        for row in csv.DictReader(f):
            runs.add(row["run"])
            samples.setdefault((row["system"], row["metric"]), []).append(float(row["value"]))

    systems = [s for s in SYSTEMS if any(k[0] == s for k in samples)]
    metrics = [m for m in METRICS if any(k[1] == m for k in samples)]
    metrics += sorted({k[1] for k in samples} - set(metrics))

    def stat(system, metric):
        values = samples.get((system, metric))
        if not values:
            return None
        return statistics.median(values), min(values), max(values), len(values)

    def ratio(system, metric, ref):
        a, b = stat(system, metric), stat(ref, metric)
        if not a or not b or b[0] == 0 or system == ref:
            return None
        return a[0] / b[0]

    with open(results / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "metric", "unit", "median", "min", "max", "runs",
                    "ratio_to_direct", "ratio_to_rathole_tcp"])
        for m in metrics:
            unit = METRICS.get(m, ("", "", True, 2))[1]
            for s in systems:
                st = stat(s, m)
                if not st:
                    continue
                rd, rr = ratio(s, m, "direct"), ratio(s, m, "rathole-tcp")
                w.writerow([s, m, unit, f"{st[0]:g}", f"{st[1]:g}", f"{st[2]:g}", st[3],
                            "" if rd is None else f"{rd:.3f}", "" if rr is None else f"{rr:.3f}"])

    machine = (results / "machine.txt").read_text() if (results / "machine.txt").exists() else ""
    out = []
    out.append(f"Machine and run:\n\n```\n{machine.strip()}\n```\n")
    out.append(f"### Results: median [min–max] of {len(runs)} run(s)\n")
    out.append("| metric | unit | " + " | ".join(systems) + " |")
    out.append("| --- | --- |" + " ---: |" * len(systems))
    for m in metrics:
        if m.endswith("_errors") and all((stat(s, m) or (0,))[0] == 0 and
                                         (stat(s, m) or (0, 0, 0))[2] == 0 for s in systems):
            continue
        label, unit, _, digits = METRICS.get(m, (m, "", True, 2))
        cells = []
        for s in systems:
            st = stat(s, m)
            if not st:
                cells.append("–")
            elif st[3] > 1:
                cells.append(f"{fmt(st[0], digits)} [{fmt(st[1], digits)}–{fmt(st[2], digits)}]")
            else:
                cells.append(fmt(st[0], digits))
        out.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")

    others = [s for s in systems if s != "direct"]
    out.append("\n### Ratios of medians: × direct / × rathole-tcp\n")
    out.append("| metric | " + " | ".join(others) + " |")
    out.append("| --- |" + " ---: |" * len(others))
    for m in metrics:
        if m.endswith("_errors") or m.startswith("streams_") or m == "loadavg_1m":
            continue
        label = METRICS.get(m, (m,))[0]
        cells = []
        for s in others:
            rd, rr = ratio(s, m, "direct"), ratio(s, m, "rathole-tcp")
            if rd is None and rr is None:
                cells.append("–")
            else:
                cells.append(" / ".join("–" if r is None else f"{r:.2f}×" for r in (rd, rr)))
        if any(c != "–" for c in cells):
            out.append(f"| {label} | " + " | ".join(cells) + " |")

    # Adit's targets (issue 4, section 6).
    def med(s, m):
        st = stat(s, m)
        return st[0] if st else None

    def check(ok):
        return "–" if ok is None else ("met" if ok else "**missed**")

    def cmp(value, limit, higher):
        if value is None:
            return None
        return value >= limit if higher else value <= limit

    if "adit" in systems:
        rows = []

        def r_direct(m):
            return ratio("adit", m, "direct")

        def add(target, measured, ok):
            rows.append(f"| {target} | {measured} | {check(ok)} |")

        def show_ratio(m, limit):
            rd = r_direct(m)
            add(f"{METRICS[m][0]} ≥ {limit}× direct",
                "–" if rd is None else f"{rd:.2f}× ({fmt(med('adit', m), 0)} vs {fmt(med('direct', m), 0)} {METRICS[m][1]})",
                cmp(rd, limit, True))

        def show_abs(m, limit, label=None, digits=1):
            v = med("adit", m)
            add(label or f"{METRICS[m][0]} ≤ {limit} {METRICS[m][1]}",
                "–" if v is None else f"{fmt(v, digits)} {METRICS[m][1]}", cmp(v, limit, False))

        show_ratio("http_small_rps", 0.75)
        show_abs("http_small_cpu_us_per_req", 20, "small HTTP ≤ 20 CPU-µs/request (edge + connector)")
        show_abs("rtt_p50_us", 60, "round trip p50 ≤ 60 µs", 0)
        show_ratio("mib_MBps", 0.5)
        for m in ("tcp1", "tcp1R", "tcp8"):
            show_ratio(f"{m}_MBps", 0.4)
            cpu = med("adit", f"{m}_cpu_s_per_GB")
            acc = med("adit", f"{m}_access_cpu_s_per_GB")
            add(f"{METRICS[m + '_MBps'][0]} ≤ 1.0 CPU-s/GB (edge + connector)",
                "–" if cpu is None else f"{cpu:.2f} CPU-s/GB"
                + ("" if acc is None else f" (+ {acc:.2f} in `adit access`)"),
                cmp(cpu, 1.0, False))
        show_ratio("newconn_cps", 0.5)
        show_abs("rss_idle_client_MiB", 8, "idle RSS connector ≤ 8 MiB")
        show_abs("rss_idle_server_MiB", 32, "idle RSS server ≤ 32 MiB")
        s_ = med("adit", "stream_server_KiB")
        c_ = med("adit", "stream_client_KiB")
        add("≤ 4 KiB per idle open stream (edge + connector)",
            "–" if s_ is None or c_ is None else
            f"{s_ + c_:.1f} KiB (edge {s_:.1f} + connector {c_:.1f})",
            None if s_ is None or c_ is None else s_ + c_ <= 4)
        show_abs("first_request_ms", 300, "first request ≤ 300 ms after `adit tunnel run`", 0)
        out.append("\n### Adit's targets (issue 4, section 6), on the medians\n")
        out.append("| target | measured | |")
        out.append("| --- | --- | --- |")
        out.extend(rows)

    # Issue 14's targets: against the better peer on each line, the whole path for bulk TCP.
    peers = [p for p in ("rathole-tcp", "bore") if p in systems]
    if "adit" in systems and peers:
        rows14 = []

        def best_peer(m):
            """The better peer's (name, median) on metric m."""
            higher = METRICS[m][2]
            found = [(p, med(p, m)) for p in peers if med(p, m) is not None]
            if not found:
                return None
            return (max if higher else min)(found, key=lambda pv: pv[1])

        def against_peer(m, label, digits=0):
            a, best = med("adit", m), best_peer(m)
            if a is None or best is None:
                rows14.append(f"| {label} | – | – |")
                return
            higher = METRICS[m][2]
            unit = METRICS[m][1]
            ok = a >= best[1] if higher else a <= best[1]
            rows14.append(f"| {label} | {fmt(a, digits)} vs {best[0]} {fmt(best[1], digits)} {unit}"
                          f" ({a / best[1]:.2f}×) | {check(ok)} |")

        against_peer("http_small_rps", "small HTTP req/s ≥ the best peer's")
        against_peer("http_small_cpu_us_per_req", "small HTTP tunnel CPU ≤ the best peer's", 1)
        against_peer("rtt_p50_us", "round trip p50 ≤ the best peer's")
        for m in ("tcp1", "tcp1R", "tcp8"):
            against_peer(f"{m}_MBps", f"{METRICS[m + '_MBps'][0]} ≥ the best peer's")
            cpu, acc = med("adit", f"{m}_cpu_s_per_GB"), med("adit", f"{m}_access_cpu_s_per_GB")
            whole = None if cpu is None else cpu + (acc or 0)
            rows14.append(f"| {METRICS[m + '_MBps'][0]}: whole path ≤ 1.5 CPU-s/GB | "
                          + ("–" if whole is None else
                             f"{whole:.2f} ({cpu:.2f} edge + connector, {acc or 0:.2f} `adit access`)")
                          + f" | {check(cmp(whole, 1.5, False))} |")
        for m, label in (("mib_MBps", "1 MiB downloads: still ahead"),
                         ("newconn_cps", "new connections: still ahead"),
                         ("http_small_p99_us", "small HTTP p99: still ahead"),
                         ("rtt_p99_us", "round trip p99: still ahead"),
                         ("stream_server_KiB", "per idle stream, edge: still ahead"),
                         ("stream_client_KiB", "per idle stream, connector: still ahead")):
            if m in metrics:
                against_peer(m, label, METRICS[m][3])
        for m, limit, label in (("rss_idle_client_MiB", 8, "idle RSS connector ≤ 8 MiB"),
                                ("rss_idle_server_MiB", 16, "idle RSS edge ≤ 16 MiB")):
            v = med("adit", m)
            rows14.append(f"| {label} | {'–' if v is None else f'{v:.1f} MiB'} | {check(cmp(v, limit, False))} |")
        out.append("\n### Issue 14's targets, on the medians (the best peer: the better of "
                   + " and ".join(peers) + " on each line)\n")
        out.append("| target | measured | |")
        out.append("| --- | --- | --- |")
        out.extend(rows14)

    failures = results / "failures.txt"
    if failures.exists() and failures.read_text().strip():
        out.append("\n### Problems during the run\n")
        for line in failures.read_text().strip().splitlines():
            out.append(f"* {line}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
