"""Two one-off measurements behind figures in bench/FINDINGS.md, without HTTP or load:
the sweeper alone on a backlog, and the cost of hashing audit rows.

    .venv/bin/python -m bench.probes [--rows 50000] [--batch 500]

The sweeper runs on a throwaway embedded PostgreSQL (bench.pg), as `make bench` does.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

from app import crypto
from app.config import DatabaseConfig, Settings
from app.core.audit import Event, chained
from app.core.context import Services
from app.expiry import sweep
from app.store.db import Store, close_pool, create_pool
from bench import fill, pg

HASH_EVENTS = 500
HASH_ROUNDS = 20


def hash_cost() -> float:
    """Microseconds to chain and hash one audit row (the sweeper's kind of event)."""
    events = [Event("secret.expired", "success", "system", receipt_ref=bytes(32))] * HASH_EVENTS
    at = datetime.now(UTC)
    seconds = timeit.timeit(
        lambda: chained(b"k" * 32, 3, (5, b"h" * 32), at, events), number=HASH_ROUNDS
    )
    return seconds / HASH_ROUNDS / HASH_EVENTS * 1e6


async def _sweep(url: str, batch: int) -> tuple[int, float, float]:
    settings = Settings(
        database=DatabaseConfig(url=url),
        keys=crypto.parse_keyring(crypto.generate_keyring_text()),
    )
    pool = await create_pool(settings.database)
    try:
        svc = Services.build(settings, Store(pool, 5.0))
        wall, cpu = time.perf_counter(), time.process_time()
        purged = await sweep(svc, batch)
        return purged.secrets, time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await close_pool(pool)


def sweeper_alone(rows: int, batch: int) -> dict[str, float]:
    """A backlog of `rows` expired secrets (receipts still live), swept with nothing else
    running: rows per second, and the sweeper's own CPU per row."""
    with (
        tempfile.TemporaryDirectory(prefix="ots-probe-") as work,
        pg.database(None, Path(work)) as db,
    ):
        fill.secrets(db.url, 1, rows, expired=True)
        swept, wall, cpu = asyncio.run(_sweep(db.url, batch))
    return {"rows": swept, "rows_per_second": swept / wall, "python_us_per_row": cpu / swept * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    print(f"audit row chained and hashed: {hash_cost():.1f} us")
    alone = sweeper_alone(args.rows, args.batch)
    print(
        f"sweeper alone, batches of {args.batch}: {alone['rows']:,.0f} rows at "
        f"{alone['rows_per_second']:,.0f} rows/s, {alone['python_us_per_row']:.1f} us of "
        "Python per row"
    )


if __name__ == "__main__":
    main()
