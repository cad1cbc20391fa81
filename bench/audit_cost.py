"""What the audit trail costs: secret lifecycles (conceal, receipt, reveal) through the use
cases, with the trail written and with it skipped, interleaved in one run.

    .venv/bin/python bench/audit_cost.py [--rounds 5] [--lifecycles 400] [--concurrency 16]

Runs on a throwaway embedded PostgreSQL, rate limits raised out of the way. The
"off" rounds replace audit.record with a no-op: a measurement device only, the service
has no such switch.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from app import crypto, embedded, migrate
from app.config import DEFAULT_RATE_LIMITS, DatabaseConfig, RateLimits, Settings
from app.core import audit, receipts, secrets
from app.core.context import Caller, Services
from app.store.db import Store, close_pool, create_pool

CALLER = Caller(client="127.0.0.1", user_agent="bench", request_id="bench")


async def lifecycle(svc: Services, n: int) -> None:
    created = await secrets.conceal(svc, CALLER, secrets.ConcealRequest(secret=f"value {n}"))
    await receipts.show_receipt(svc, CALLER, created.receipt_key)
    await secrets.reveal(svc, CALLER, created.share_key, "", True)


async def timed(svc: Services, count: int, concurrency: int) -> float:
    """Lifecycles per second."""
    slots = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with slots:
            await lifecycle(svc, n)

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.perf_counter() - start)


async def skip(*_: object) -> None:
    return None


async def measure(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    settings = Settings(
        database=DatabaseConfig(url=url, pool_max=args.concurrency),
        keys=crypto.parse_keyring(crypto.generate_keyring_text()),
        rate_limits=RateLimits(per_event=tuple((e, 10**9) for e, _ in DEFAULT_RATE_LIMITS)),
    )
    pool = await create_pool(settings.database)
    svc = Services.build(settings, Store(pool, 5.0))
    real: Callable[..., Awaitable[None]] = audit.record
    rates: dict[str, list[float]] = {"on": [], "off": []}
    try:
        await timed(svc, args.lifecycles // 4, args.concurrency)  # warm-up
        for _ in range(args.rounds):
            for mode in ("on", "off"):
                audit.record = real if mode == "on" else skip  # type: ignore[assignment]
                rates[mode].append(await timed(svc, args.lifecycles, args.concurrency))
    finally:
        audit.record = real  # type: ignore[assignment]
        await close_pool(pool)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lifecycles", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ots-bench-") as tmp:
        server = embedded.start(Path(tmp) / "pg", delete_on_exit=True)
        url = embedded.database_url(server, f"bench_{uuid.uuid4().hex[:8]}")
        migrate.upgrade(url)
        rates = asyncio.run(measure(url, args))
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(f"rounds={args.rounds} lifecycles/round={args.lifecycles} concurrency={args.concurrency}")
    print(f"trail on : median {on:7.1f} lifecycles/s  {[round(r) for r in rates['on']]}")
    print(f"trail off: median {off:7.1f} lifecycles/s  {[round(r) for r in rates['off']]}")
    print(f"ratio on/off: {on / off:.2f}  (each lifecycle writes 3 audit events)")


if __name__ == "__main__":
    main()
