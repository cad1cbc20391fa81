"""`profile`: where the service spends its CPU on the conceal and reveal paths under load
(py-spy, sampling the running server), and how many SQL round trips each request makes
(pg_stat_statements, over a short run at low concurrency)."""

from __future__ import annotations

import contextlib
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bench import hotspots, load, pg, procs, seed, servers
from bench import workloads as w
from bench.plan import PROBE, Context
from bench.results import RESULTS, Report
from bench.servers import ROOT, Server

TRIP_SECONDS = 3.0
TRIP_CONCURRENCY = 4
# asyncpg's pool resets each connection it takes back with one simple query holding
# these four statements: one round trip, counted once (on its first statement).
RESET_TAIL = ("CLOSE ALL", "UNLISTEN *", "RESET ALL")


def profile(ctx: Context) -> Report:
    report = Report("profile", ctx.command)
    quiet = {"OTS_EXPIRY_INTERVAL": "3600"}  # no sweeper statements in the counts
    with (
        pg.database(ctx.database_url, ctx.work) as db,
        servers.service(db, ctx.logs, **quiet) as ours,
    ):
        # Warm-up: statements prepared, pool full; its rate sizes the reveals' links.
        rate = load.run(ours, w.conceal(), PROBE, 3).rps
        for name in ("conceal", "reveal"):
            report.extra[f"trips_{name}"] = round_trips(ctx, db, ours, name, rate)
            report.extra[f"hot_{name}"] = sample(ctx, ours, name, rate, report)
    return report


def workload(ctx: Context, ours: Server, name: str, links: int) -> load.Workload:
    if name == "conceal":
        return w.conceal()
    pairs = seed.ours(ours.url, links)
    return w.reveal(seed.write(ctx.keys(f"profile-{name}-{links}"), w.reveal_paths(pairs)))


def round_trips(
    ctx: Context, db: pg.Database, ours: Server, name: str, rate: float
) -> dict[str, object]:
    work = workload(ctx, ours, name, int(2 * rate * TRIP_SECONDS) + 50)
    pg.reset_stat_statements(db.url)
    before = served(ours)
    load.run(ours, work, TRIP_CONCURRENCY, TRIP_SECONDS)
    requests = served(ours) - before
    calls = [
        (query, n) for query, n in pg.stat_statements(db.url) if "pg_stat_statements" not in query
    ]
    trips = sum(n for query, n in calls if query.strip() not in RESET_TAIL)
    per = [(" ".join(query.split())[:90], round(n / requests, 2)) for query, n in calls]
    return {"requests": requests, "round_trips": round(trips / requests, 2), "statements": per}


def served(ours: Server) -> int:
    """Requests the service has answered so far, from its own metrics."""
    with urllib.request.urlopen(f"{ours.url}/metrics", timeout=10) as response:  # noqa: S310  # loopback
        text = response.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("ots_http_requests_total{") and "/api/" in line
        )
    )


def sample(ctx: Context, ours: Server, name: str, rate: float, report: Report) -> dict[str, object]:
    seconds = max(ctx.plan.seconds, 5)
    work = workload(ctx, ours, name, int(2.6 * rate * (seconds + 1)) + 50)
    raw = RESULTS / f"profile-{name}.txt"
    with _py_spy(ours.app_pids[0], seconds, raw):
        report.runs.append(load.run(ours, work, PROBE, seconds + 1))
    return hotspots.summarize(raw.read_text())


@contextlib.contextmanager
def _py_spy(pid: int, seconds: float, out: Path) -> Iterator[None]:
    cmd = [procs.tool("py-spy", ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(pid)]
    cmd += ["--duration", str(int(seconds)), "--rate", "250", "--nonblocking", "--function"]
    cmd += ["--format", "raw", "--output", str(out)]
    spy = subprocess.Popen(  # noqa: S603  # py-spy from .venv, full path
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        yield
    finally:
        _, err = spy.communicate(timeout=seconds + 60)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy exited {spy.returncode}: {err[-1000:]}")
