"""`passphrase`: conceal and reveal with a passphrase (argon2id per request), and `lag`:
how late the event loop answers while passphrase requests run at full concurrency.

The service exposes no loop-lag metric, so `lag` measures it from outside: a probe
sends GET /healthz (no database, no hashing) every 20 ms on its own connection and
times the answer. That is an upper bound on the loop's lag: it includes one small
request's own parsing and answering, which the idle baseline shows.
"""

from __future__ import annotations

import contextlib
import http.client
import statistics
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from bench import load, pg, seed, servers
from bench import workloads as w
from bench.plan import Context
from bench.results import Report, Run
from bench.servers import Server

PROBE_PAUSE = 0.02


@contextlib.contextmanager
def _service(ctx: Context) -> Iterator[Server]:
    with pg.database(ctx.database_url, ctx.work) as db, servers.service(db, ctx.logs) as ours:
        yield ours


def passphrase(ctx: Context) -> Report:
    """One repetition (no peer to pair with); each concurrency's reveal links are made
    at the rate its conceal run just showed."""
    report = Report("passphrase", ctx.command)
    with _service(ctx) as ours:
        load.run(ours, w.conceal(passphrase=True), 16, 2)  # warm-up
        for c in ctx.plan.concurrencies:
            made = load.run(ours, w.conceal(passphrase=True), c, ctx.plan.seconds)
            report.runs += [made, _reveal(ctx, ours, c, made.rps)]
    return report


def _reveal(ctx: Context, ours: Server, c: int, rate: float) -> Run:
    count = int(rate * ctx.plan.seconds * 1.5) + 20
    pairs = seed.ours(ours.url, count, passphrase=True)
    keys = seed.write(ctx.keys(f"passphrase-{c}"), w.reveal_paths(pairs))
    return load.run(ours, w.reveal(keys, passphrase=True), c, ctx.plan.seconds)


def lag(ctx: Context) -> Report:
    report = Report("lag", ctx.command)
    c, seconds = max(ctx.plan.concurrencies), 2 * ctx.plan.seconds
    with _service(ctx) as ours:
        idle = probe(ours.url, 3)
        running = load.start(ours, w.conceal(passphrase=True), c, seconds + 2)
        time.sleep(1)  # let every connection get its first request in
        busy = probe(ours.url, seconds)
        report.runs.append(running.finish())
    report.extra = {"idle": summarize(idle), "busy": summarize(busy), "concurrency": c}
    return report


def probe(base: str, seconds: float) -> list[float]:
    """Latencies (ms) of GET /healthz, one at a time, for `seconds`."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    latencies, deadline = [], time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(PROBE_PAUSE)
    finally:
        conn.close()
    return latencies


def summarize(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "probes": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[max(int(len(ordered) * 0.99) - 1, 0)],
        "max_ms": ordered[-1],
    }
