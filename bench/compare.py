"""`compare`: the service, SnapPass, the SQL ceiling (pgbench) and the HTTP ceiling, side
by side in one run, interleaved: every repetition runs every system before the next."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from bench import load, pg, pgbench, seed, servers
from bench import workloads as w
from bench.plan import POOL, Context
from bench.results import Report, Run
from bench.servers import Server

READ_POOL = 1000  # secrets the read mix reads over and over
WARM_UP = 2.0


@dataclass
class SideBySide:
    ctx: Context
    db: pg.Database
    ours: Server
    snap: Server
    http: Server
    rates: dict[tuple[str, str, int], float] = field(default_factory=dict)

    def warm_up(self) -> None:
        for server, work in ((self.ours, w.conceal()), (self.snap, w.snappass_create())):
            load.run(server, work, 16, WARM_UP)
        load.run(self.http, w.ceiling(), 16, WARM_UP)
        seed.write(self.ctx.keys("ours-reads"), w.mixed_reads(seed.ours(self.ours.url, READ_POOL)))
        seed.write(self.ctx.keys("snappass-reads"), seed.snappass(self.snap.url, READ_POOL))

    def rep(self, rep: int) -> list[Run]:
        runs = [self.sql_conceal(POOL, rep), self.sql_reveal(POOL, rep)]
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
        return self.noted(load.run(server, work, c, self.ctx.plan.seconds, rep))

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

    def sql_conceal(self, c: int, rep: int) -> Run:
        return self.noted(pgbench.conceal(self.db, c, self.ctx.plan.seconds, rep))

    def sql_reveal(self, c: int, rep: int) -> Run:
        rate = self.rates.get(("sql", "reveal", c)) or self.rates[("sql", "conceal", c)]
        return self.noted(pgbench.reveal(self.db, c, int(rate * self.ctx.plan.seconds), rep))


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
            report.save()  # a long run keeps what it has measured so far
    return report
