"""`sweeper`: how fast the expiry sweeper reclaims a backlog of expired secrets while the
lifecycle load runs, and what that does to the load's p99.

The backlog is made while the service is down; the service sweeps at start (and then
every second here), so the sweep begins as the load does. Progress is read from the
database once a second: the sweeper's metrics only move when a whole pass ends.
"""

from __future__ import annotations

import time

from bench import fill, load, pg, servers
from bench import workloads as w
from bench.plan import PROBE, Context
from bench.results import Report

BACKLOG = "SELECT count(*) FROM secrets WHERE expires_at <= now()"


def sweeper(ctx: Context) -> Report:
    report = Report("sweeper", ctx.command)
    rows = ctx.plan.expired_rows
    with pg.database(ctx.database_url, ctx.work) as db:
        with servers.service(db, ctx.logs) as ours:
            load.run(ours, w.lifecycle(), 16, 2)  # warm-up
            report.runs.append(load.run(ours, w.lifecycle(), PROBE, ctx.plan.seconds))
        fill.secrets(db.url, 1, rows, expired=True)
        started = time.monotonic()  # the service sweeps as it starts, before it listens
        with servers.service(db, ctx.logs, OTS_EXPIRY_INTERVAL="1") as ours:
            running = load.start(ours, w.lifecycle(), PROBE, ctx.plan.sweep_window)
            timeline = _watch(db.url, started, ctx.plan.sweep_window)
            during = running.finish(interrupt=True)
    report.runs.append(during)
    elapsed, left = timeline[-1]
    report.extra = {
        "expired_rows": rows,
        "seconds": elapsed,
        "left": left,
        "rows_per_second": (rows - left) / elapsed if elapsed else 0.0,
        "timeline": timeline,
    }
    return report


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
