"""`sweeper`: how fast the expiry sweeper reclaims a backlog of expired secrets while the
lifecycle load runs, and what that does to the load's p99; twice, each with a backlog of
its own: under the saturating load (PROBE connections, no pause) and under a paced one
(PACED connections, each pausing PAUSE_MS before each request), which leaves the machine
part idle, as a service in production mostly runs.

The backlog is made while the service is down; the service sweeps at start (and then
every second here), so the sweep begins as the load does. Progress is read from the
database once a second: the sweeper's metrics only move when a whole pass ends.
"""

from __future__ import annotations

import time
from typing import Any

from bench import fill, load, pg, servers
from bench import workloads as w
from bench.load import Workload
from bench.plan import PROBE, Context
from bench.results import Report, Run

BACKLOG = "SELECT count(*) FROM secrets WHERE expires_at <= now()"
# About 40 % of the saturated lifecycle rate on the 2-core machine (1,300 of 3,200 req/s).
PACED, PAUSE_MS = 16, 10


def sweeper(ctx: Context) -> Report:
    report = Report("sweeper", ctx.command)
    rows = ctx.plan.expired_rows
    loads = ((w.lifecycle(), PROBE), (w.lifecycle(PAUSE_MS), PACED))
    with pg.database(ctx.database_url, ctx.work) as db:
        with servers.service(db, ctx.logs) as ours:
            load.run(ours, w.lifecycle(), 16, 2)  # warm-up
            before = [load.run(ours, work, c, ctx.plan.seconds) for work, c in loads]
        drained = []
        for n, (work, c) in enumerate(loads):
            first = 1 + n * rows  # the first backlog's receipts are still there
            drained.append(_drain(ctx, db, first, rows, work, c))
    report.runs = [before[0], drained[0][0], before[1], drained[1][0]]
    report.extra = {**drained[0][1], "paced": drained[1][1]}
    return report


def _drain(
    ctx: Context, db: pg.Database, first: int, rows: int, work: Workload, concurrency: int
) -> tuple[Run, dict[str, Any]]:
    """A backlog of `rows` expired secrets swept while `work` runs: the load's run during
    the sweep, and how the sweep went. Each starts from a vacuumed table: one drain's dead
    rows must not slow the next."""
    fill.settle(db.url)
    fill.secrets(db.url, first, first + rows - 1, expired=True)
    started = time.monotonic()  # the service sweeps as it starts, before it listens
    with servers.service(db, ctx.logs, OTS_EXPIRY_INTERVAL="1") as ours:
        running = load.start(ours, work, concurrency, ctx.plan.sweep_window)
        timeline = _watch(db.url, started, ctx.plan.sweep_window)
        during = running.finish(interrupt=True)
    elapsed, left = timeline[-1]
    return during, {
        "expired_rows": rows,
        "seconds": elapsed,
        "left": left,
        "rows_per_second": (rows - left) / elapsed if elapsed else 0.0,
        "timeline": timeline,
    }


def _watch(url: str, started: float, window: float) -> list[tuple[float, int]]:
    """(seconds since the service started, expired rows left), until none are left."""
    timeline = []
    while True:
        left = int(pg.sql(url, BACKLOG)[0][0])
        elapsed = time.monotonic() - started
        timeline.append((round(elapsed, 2), left))
        if left == 0 or elapsed > window:
            return timeline
        time.sleep(1)
