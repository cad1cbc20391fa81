"""`compare`: the service, SnapPass, the SQL ceiling (pgbench) and the HTTP ceiling, side
by side in one run, interleaved: every repetition runs every system before the next."""

from __future__ import annotations

import contextlib
import http.client
import re
import urllib.parse
from dataclasses import dataclass, field

from bench import load, pg, pgbench, seed, servers
from bench import workloads as w
from bench.plan import POOL, Context
from bench.results import Report, Run
from bench.servers import Server

READ_POOL = 1000  # secrets the read mix reads over and over
WARM_UP = 2.0
# The batched SQL ceiling: pgbench sending conceals and reveals this many per statement,
# as the service's group commit does under load (its mean batch sizes are in the report).
SQL_BATCH = 8
_BATCH_SAMPLE = re.compile(r'^ots_batch_size_(sum|count)\{kind="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


def batch_sizes(server: Server) -> dict[tuple[str, str], float]:
    """The service's batch-size histogram totals, by (kind, sum or count)."""
    parts = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {(m[2], m[1]): float(m[3]) for m in _BATCH_SAMPLE.finditer(text)}


def mean_batches(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> dict[str, float]:
    """Each kind's mean batch size between two readings (kinds that ran only)."""
    means = {}
    for kind in sorted({kind for kind, _ in after}):
        count = after.get((kind, "count"), 0.0) - before.get((kind, "count"), 0.0)
        if count:
            total = after.get((kind, "sum"), 0.0) - before.get((kind, "sum"), 0.0)
            means[kind] = round(total / count, 2)
    return means


@dataclass
class SideBySide:
    ctx: Context
    db: pg.Database
    ours: Server
    snap: Server
    http: Server
    rates: dict[tuple[str, str, int], float] = field(default_factory=dict)
    batches: dict[str, dict[str, float]] = field(default_factory=dict)

    def warm_up(self) -> None:
        for server, work in ((self.ours, w.conceal()), (self.snap, w.snappass_create())):
            load.run(server, work, 16, WARM_UP)
        load.run(self.http, w.ceiling(), 16, WARM_UP)
        seed.write(self.ctx.keys("ours-reads"), w.mixed_reads(seed.ours(self.ours.url, READ_POOL)))
        seed.write(self.ctx.keys("snappass-reads"), seed.snappass(self.snap.url, READ_POOL))

    def rep(self, rep: int) -> list[Run]:
        runs = [self.sql_conceal(POOL, rep), self.sql_reveal(POOL, rep)]
        runs += [self.sql_conceal(POOL, rep, SQL_BATCH), self.sql_reveal(POOL, rep, SQL_BATCH)]
        for c in self.ctx.plan.concurrencies:
            runs += self.round(c, rep)
        return runs

    def round(self, c: int, rep: int) -> list[Run]:
        ctx = self.ctx
        return [
            self.wrk(self.ours, w.conceal(), c, rep),
            self.wrk(self.snap, w.snappass_create(), c, rep),
            self.sql_conceal(c, rep),
            self.wrk(self.http, w.ceiling(), c, rep),
            self.ours_reveal(c, rep),
            self.snappass_retrieve(c, rep),
            self.sql_reveal(c, rep),
            self.wrk(self.ours, w.lifecycle(), c, rep),
            self.wrk(self.snap, w.snappass_lifecycle(), c, rep),
            self.wrk(self.ours, w.mixed(ctx.keys("ours-reads")), c, rep),
            self.wrk(self.snap, w.snappass_mixed(ctx.keys("snappass-reads")), c, rep),
        ]

    def wrk(self, server: Server, work: load.Workload, c: int, rep: int) -> Run:
        before = batch_sizes(server) if server is self.ours else {}
        run = self.noted(load.run(server, work, c, self.ctx.plan.seconds, rep))
        if server is self.ours:
            self.batches[f"{run.workload} {c} {rep}"] = mean_batches(before, batch_sizes(server))
        return run

    def noted(self, run: Run) -> Run:
        self.rates[(run.system, run.workload, run.concurrency)] = run.rps
        return run

    def wanted(self, system: str, c: int) -> int:
        """Links for one reveal run, with room to spare (rates wander between repetitions);
        a thread that still runs out stops and the run says so."""
        seen = self.rates.get((system, "reveal", c), 0.0)
        rate = max(seen, self.rates[(system, "conceal", c)])
        return int(rate * self.ctx.plan.seconds * 1.8) + 100

    def ours_reveal(self, c: int, rep: int) -> Run:
        pairs = seed.ours(self.ours.url, self.wanted("ours", c))
        keys = seed.write(self.ctx.keys(f"ours-reveal-{c}-{rep}"), w.reveal_paths(pairs))
        return self.wrk(self.ours, w.reveal(keys), c, rep)

    def snappass_retrieve(self, c: int, rep: int) -> Run:
        paths = seed.snappass(self.snap.url, self.wanted("snappass", c))
        keys = seed.write(self.ctx.keys(f"snappass-reveal-{c}-{rep}"), paths)
        return self.wrk(self.snap, w.snappass_retrieve(keys), c, rep)

    def sql_conceal(self, c: int, rep: int, batch: int = 1) -> Run:
        return self.noted(pgbench.conceal(self.db, c, self.ctx.plan.seconds, rep, batch))

    def sql_reveal(self, c: int, rep: int, batch: int = 1) -> Run:
        system = "sql" if batch == 1 else pgbench.BATCHED_SYSTEM
        rate = self.rates.get((system, "reveal", c)) or self.rates[(system, "conceal", c)]
        wanted = int(rate * self.ctx.plan.seconds)
        return self.noted(pgbench.reveal(self.db, c, wanted, rep, batch))


def compare(ctx: Context) -> Report:
    report = Report("compare", ctx.command)
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(pg.database(ctx.database_url, ctx.work))
        ours = stack.enter_context(servers.service(db, ctx.logs))
        snap = stack.enter_context(servers.snappass(ctx.logs, ctx.work))
        http = stack.enter_context(servers.ceiling(ctx.logs))
        side = SideBySide(ctx, db, ours, snap, http)
        side.warm_up()
        for rep in range(ctx.plan.reps):
            report.runs += side.rep(rep)
            report.extra = {"sql_batch": SQL_BATCH, "batches": side.batches}
            report.save()  # a long run keeps what it has measured so far
    return report
