"""`rss`: the service's resident memory over a long lifecycle load, read after each
segment; growth is from the end of the first segment (warm) to the end of the last."""

from __future__ import annotations

from bench import load, pg, servers
from bench import workloads as w
from bench.plan import PROBE, Context
from bench.results import Report


def rss(ctx: Context) -> Report:
    report = Report("rss", ctx.command)
    segments = max(int(ctx.plan.rss_seconds / ctx.plan.rss_segment), 2)
    with pg.database(ctx.database_url, ctx.work) as db, servers.service(db, ctx.logs) as ours:
        for segment in range(segments):
            report.runs.append(load.run(ours, w.lifecycle(), PROBE, ctx.plan.rss_segment, segment))
    first, last = report.runs[0].rss_mb, report.runs[-1].rss_mb
    report.extra = {
        "requests": sum(run.requests for run in report.runs),
        "first_mb": first,
        "last_mb": last,
        "growth_pct": 100 * (last - first) / first,
    }
    return report
