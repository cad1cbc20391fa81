"""`sweeper`: how fast the expiry sweeper reclaims a backlog of expired secrets while the
lifecycle load runs, and what that does to the load's p99, each drain with a backlog of its
own: `sweep_drains` times under the saturating load (PROBE connections, no pause), judged
on their median, then once under a paced one (PACED connections, each pausing PAUSE_MS
before each request), which leaves the machine part idle, as a service in production
mostly runs.

Why several drains: on this machine one drain's p99 rise is a draw. Nine drains of one
code rose from -7 % to +356 % (bench/FINDINGS.md, ninth round); a verdict on one of them
says more about the minute than about the code.

Each backlog is made before its service starts, set to expire LEAD_SECONDS after the fill
began. The service is warmed up under the load, the load alone is measured on it for a
third of the sweep window, and the measured sweep starts a second before the rows expire
(the service sweeps every second here): both runs see the same warm service. Until the
sixth round the service started with the backlog already expired, so the run during the
sweep also measured a service starting, against a 5-second run of another one. Progress
is read from the database once a second: the sweeper's metrics only move when a whole
pass ends.
"""

from __future__ import annotations

import time
from typing import Any

from bench import fill, load, pg, servers
from bench import workloads as w
from bench.load import Workload
from bench.plan import PROBE, Context
from bench.results import Report, Run

# The backlog's rows left: those expiring within LEAD_SECONDS (the load's own secrets live
# an hour, past any backlog's time).
BACKLOG = "SELECT count(*) FROM secrets WHERE expires_at <= now() + interval '{lead} seconds'"
LEAD = "SELECT extract(epoch FROM min(expires_at) - now()) FROM secrets"
# Long enough to fill a million rows, start the service, warm it up and measure the load
# alone (about 60 s here); what is left is idle, reported as idle_before_expiry.
LEAD_SECONDS, QUICK_LEAD_SECONDS = 150, 30
WARM_SECONDS = 5
MIN_LEAD = 2
# About 40 % of the saturated lifecycle rate on the 2-core machine (1,300 of 3,200 req/s).
PACED, PAUSE_MS = 16, 10


def sweeper(ctx: Context) -> Report:
    report = Report("sweeper", ctx.command)
    rows = ctx.plan.expired_rows
    loads = [(w.lifecycle(), PROBE)] * ctx.plan.sweep_drains + [(w.lifecycle(PAUSE_MS), PACED)]
    drains = []
    with pg.database(ctx.database_url, ctx.work) as db:
        for n, (work, c) in enumerate(loads):
            first = 1 + n * rows  # the earlier backlogs' receipts are still there
            drains.append(_drain(ctx, db, first, rows, work, c))
    report.runs = [run for before, during, _ in drains for run in (before, during)]
    saturated = [_with_rise(before, during, x) for before, during, x in drains[:-1]]
    report.extra = {"drains": saturated, "paced": _with_rise(*drains[-1])}
    return report


def _with_rise(before: Run, during: Run, swept: dict[str, Any]) -> dict[str, Any]:
    """A drain's figures with the load's before and during it."""
    return {
        **swept,
        "rps_before": before.rps,
        "rps_during": during.rps,
        "p99_before_ms": before.p99_ms,
        "p99_during_ms": during.p99_ms,
        "p99_rise_pct": 100 * (during.p99_ms / before.p99_ms - 1),
    }


def _drain(
    ctx: Context, db: pg.Database, first: int, rows: int, work: Workload, concurrency: int
) -> tuple[Run, Run, dict[str, Any]]:
    """A backlog of `rows` secrets swept while `work` runs: the load's run alone just
    before, its run during the sweep, and how the sweep went. Each starts from a vacuumed
    table: one drain's dead rows must not slow the next."""
    fill.settle(db.url)
    lead_seconds = QUICK_LEAD_SECONDS if ctx.plan.quick else LEAD_SECONDS
    fill.secrets(db.url, first, first + rows - 1, expiring_in=lead_seconds)
    with servers.service(db, ctx.logs, OTS_EXPIRY_INTERVAL="1") as ours:
        load.run(ours, work, concurrency, WARM_SECONDS)
        before = load.run(ours, work, concurrency, ctx.plan.sweep_window / 3)
        lead = float(pg.sql(db.url, LEAD)[0][0])
        if lead < MIN_LEAD:
            raise RuntimeError(f"the backlog expired before the load was ready ({lead:.1f} s)")
        time.sleep(lead - 1)
        running = load.start(ours, work, concurrency, ctx.plan.sweep_window + 1)
        time.sleep(1)
        started = time.monotonic()  # the rows expire: the sweeper takes them within 1 s
        timeline = _watch(db.url, started, ctx.plan.sweep_window)
        during = running.finish(interrupt=True)
    elapsed, left = timeline[-1]
    return (
        before,
        during,
        {
            "expired_rows": rows,
            "seconds": elapsed,
            "left": left,
            "rows_per_second": (rows - left) / elapsed if elapsed else 0.0,
            "idle_before_expiry": round(lead - 1, 1),
            "timeline": timeline,
        },
    )


def _watch(url: str, started: float, window: float) -> list[tuple[float, int]]:
    """(seconds since the backlog expired, its rows left), until none are left."""
    timeline = []
    while True:
        left = int(pg.sql(url, BACKLOG.format(lead=LEAD_SECONDS))[0][0])
        elapsed = time.monotonic() - started
        timeline.append((round(elapsed, 2), left))
        if left == 0 or elapsed > window:
            return timeline
        time.sleep(1)
