"""`size`: conceal and reveal throughput and p99 with few live secrets, then with many
(1,000 vs 1,000,000: filler rows made in bulk, see bench/fill.py). Not interleaved: the
table only grows; each phase runs its repetitions back to back."""

from __future__ import annotations

from dataclasses import replace

from bench import fill, load, pg, seed, servers
from bench import workloads as w
from bench.plan import PROBE, Context
from bench.results import Report, Run
from bench.servers import Server

SMALL = 1000
FIRST = " (first after the fill)"  # the workload name of the run before the compared ones


def size(ctx: Context) -> Report:
    report = Report("size", ctx.command)
    with pg.database(ctx.database_url, ctx.work) as db, servers.service(db, ctx.logs) as ours:
        with fill.undone(db.url):  # the warm-up's secrets are not the small table's
            load.run(ours, w.conceal(), 16, 2)
        fill.secrets(db.url, 1, SMALL)
        fill.settle(db.url)
        report.runs += _phase(ctx, db, ours, SMALL)
        fill.secrets(db.url, SMALL + 1, ctx.plan.live_rows)
        fill.settle(db.url)  # no run meets autovacuum's pass over a million new rows
        report.runs += _phase(ctx, db, ours, ctx.plan.live_rows)
    return report


def _phase(ctx: Context, db: pg.Database, ours: Server, rows: int) -> list[Run]:
    """A first conceal run, then the compared runs. The first meets what the fill left:
    a checkpoint just made (every index page written to logs a full-page image at its
    first change after it) and pages the load has not touched yet. With a million rows
    that run had a p99 of 333 ms against 33 to 42 in the runs after it (bench/FINDINGS.md).
    It is reported, and compared apart, not taken for the steady state."""
    live = int(pg.sql(db.url, "SELECT count(*) FROM secrets")[0][0])
    label = f"{rows:,} filler, {live:,} live at start"
    with fill.undone(db.url):
        first = load.run(ours, w.conceal(), PROBE, ctx.plan.seconds)
    runs = [replace(first, workload=first.workload + FIRST, note=label)]
    # Each phase runs the plan's repetitions (three in the full plan), judged on their
    # median: with two, the median was their mean and one 5-s run's p99 decided the
    # verdict (reveal's p99 x1.21 then x0.85 on one code, twelfth round; x1.06 then x1.22,
    # thirteenth; bench/FINDINGS.md).
    #
    # What each repetition made goes before the next one: its conceals (about 20,000) and
    # the secrets seeded for its reveals that they did not use (about 30,000). Left, they
    # took the "1,000" phase to about 160,000 live rows by its last run (fourteenth
    # round), a tenth of the other phase's, not a thousandth.
    for rep in range(ctx.plan.reps):
        with fill.undone(db.url):
            made = load.run(ours, w.conceal(), PROBE, ctx.plan.seconds, rep)
            pairs = seed.ours(ours.url, int(made.rps * 2 * ctx.plan.seconds * 1.3) + 50)
            keys = seed.write(ctx.keys(f"size-{rows}-{rep}"), w.reveal_paths(pairs))
            used = load.run(ours, w.reveal(keys), PROBE, ctx.plan.seconds, rep)
        runs += [replace(run, note=f"{label}; {run.note}".strip("; ")) for run in (made, used)]
    return runs
