"""How long and how hard each subcommand runs: the full plan (about 45 minutes for `all`,
15 of them `compare` and 19 `sweeper`) or --quick (a smoke run of about 5 minutes, one
concurrency)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Plan:
    seconds: float  # one measured load run
    concurrencies: tuple[int, ...]
    reps: int  # interleaved repetitions; ratios are medians over them
    live_rows: int  # size: the large table
    expired_rows: int  # sweeper: the backlog (of each of its drains)
    sweep_drains: int  # sweeper: drains under the saturating load; judged on their median
    sweep_window: float  # sweeper: longest load run while a backlog drains
    rss_requests: int  # rss: the long run goes on until this many requests...
    rss_seconds: float  # ... or this long at most, in segments of
    rss_segment: float
    quick: bool = False


FULL = Plan(
    seconds=5,
    concurrencies=(16, 64, 256),
    reps=3,
    live_rows=1_000_000,
    expired_rows=1_000_000,
    sweep_drains=3,
    sweep_window=90,
    rss_requests=1_000_000,  # as the target asks
    rss_seconds=900,  # 1,000,000 at 1,100 req/s; 2,200 to 3,000 req/s here
    rss_segment=20,
)
QUICK = Plan(
    seconds=3,
    concurrencies=(64,),
    reps=1,
    live_rows=100_000,
    expired_rows=50_000,
    sweep_drains=1,
    sweep_window=20,
    rss_requests=20_000,
    rss_seconds=20,
    rss_segment=5,
    quick=True,
)
POOL = 10  # the service's default OTS_DB_POOL_MAX: the connections it actually uses
PROBE = 64  # the one concurrency of the size, sweeper, rss and profile runs


@dataclass(frozen=True)
class Context:
    plan: Plan
    work: Path  # scratch: the embedded PostgreSQL, key files, Redis
    logs: Path  # the servers' output
    database_url: str | None  # DATABASE_URL, else an embedded server of our own
    command: str  # as typed, for RESULTS.md

    def keys(self, name: str) -> Path:
        return self.work / f"keys-{name}.txt"
