"""`rss`: the service's resident memory over a long lifecycle load, read after each
segment, until the load has made rss_requests requests (or rss_seconds have passed, on
a machine too slow for them); growth is from the end of the first segment (warm) to the
end of the last. A fixed 420 s made 936,647 requests on a slow day, short of the target's
1,000,000."""

from __future__ import annotations

from bench import load, pg, servers
from bench import workloads as w
from bench.plan import PROBE, Context
from bench.results import Report

MIN_SEGMENTS = 2  # a warm one, then at least one more


def rss(ctx: Context) -> Report:
    report = Report("rss", ctx.command)
    segments = max(int(ctx.plan.rss_seconds / ctx.plan.rss_segment), MIN_SEGMENTS)
    with pg.database(ctx.database_url, ctx.work) as db, servers.service(db, ctx.logs) as ours:
        for segment in range(segments):
            report.runs.append(load.run(ours, w.lifecycle(), PROBE, ctx.plan.rss_segment, segment))
            made = sum(run.requests for run in report.runs)
            if len(report.runs) >= MIN_SEGMENTS and made >= ctx.plan.rss_requests:
                break
    first, last = report.runs[0].rss_mb, report.runs[-1].rss_mb
    report.extra = {
        "requests": sum(run.requests for run in report.runs),
        "first_mb": first,
        "last_mb": last,
        "growth_pct": 100 * (last - first) / first,
    }
    return report
