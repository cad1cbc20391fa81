"""Consume-once under heavy concurrency, and reveal, burn and the sweeper racing on secrets
that all expire at the same moment. Figures: 200 callers x 20 rounds; 2,000 secrets."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

from app import crypto
from app.core import receipts, secrets
from app.core.context import Caller
from app.core.errors import UnknownSecret
from app.expiry import sweep
from app.keys import SERVICES
from tests.factories import Client, conceal, reveal
from tests.reliability.figures import publish

ROUNDS, CALLERS, SECRETS = 20, 200, 2000
T = TypeVar("T")


async def test_two_hundred_concurrent_reveals_twenty_rounds(client: Client) -> None:
    winners_per_round = []
    for round_ in range(ROUNDS):
        pair = await conceal(client, f"round {round_}")
        results = await asyncio.gather(*(reveal(client, pair.secret_key) for _ in range(CALLERS)))
        statuses = Counter(status for status, _ in results)
        assert set(statuses) <= {200, 404}, statuses  # no 5xx, no timeouts
        winners_per_round.append(statuses[200])
    publish(
        "reveal_race",
        rounds=ROUNDS,
        concurrent_reveals=CALLERS,
        requests=ROUNDS * CALLERS,
        pool_size=client.app[SERVICES].store.pool.get_max_size(),
        winners_per_round=sorted(set(winners_per_round)),
        violations=sum(1 for n in winners_per_round if n != 1),
    )
    assert winners_per_round == [1] * ROUNDS


async def test_reveal_burn_and_sweeper_race_on_secrets_expiring_together(
    client: Client, db: asyncpg.Connection
) -> None:
    svc = client.app[SERVICES]
    caller = Caller(client="127.0.0.1")
    slots = asyncio.Semaphore(16)  # as many at once as a busy pod would run

    async def limited(job: Coroutine[Any, Any, T]) -> T:
        async with slots:
            return await job

    request = secrets.ConcealRequest
    created = await asyncio.gather(
        *(limited(secrets.conceal(svc, caller, request(secret=f"v{n}"))) for n in range(SECRETS))
    )
    # Soon enough that the consumers cannot finish first, however fast the machine (at
    # 1.5 s they once did, and nothing expired): a fraction goes before the deadline, the
    # rest races the sweeper at it.
    deadline = await db.fetchval(
        "UPDATE secrets SET expires_at = now() + interval '0.3 seconds' RETURNING expires_at"
    )
    order = list(created)
    random.shuffle(order)

    async def revealer(share_key: str) -> None:
        with contextlib.suppress(UnknownSecret):  # lost the race: fine, and counted below
            await secrets.reveal(svc, caller, share_key, "", True)

    async def burner(receipt_key: str) -> None:
        with contextlib.suppress(UnknownSecret):
            await receipts.burn(svc, caller, receipt_key, "", True)

    async def sweeper() -> None:
        for _ in range(60):  # bounded: 60 sweeps, 50 ms apart
            await sweep(svc, batch=200)
            await asyncio.sleep(0.05)

    jobs = [revealer(c.share_key) if i % 2 else burner(c.receipt_key) for i, c in enumerate(order)]
    jobs += [revealer(c.share_key) for c in order[: SECRETS // 4]]  # some secrets contested
    await asyncio.gather(sweeper(), *(limited(job) for job in jobs))
    await sweep(svc, batch=1000)

    # With every secret gone, a receipt still open is one the sweeper expired (it leaves
    # receipts as they are); the terminal events below show each had exactly one fate.
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    stored = await db.fetch("SELECT state FROM receipts")
    states = Counter("expired" if row["state"] == "new" else row["state"] for row in stored)
    assert sum(states.values()) == SECRETS
    assert set(states) <= {"received", "burned", "expired"}, states
    # All three outcomes happened, so the race was real.
    assert min(states[s] for s in ("received", "burned", "expired")) > 0, states
    terminal = await db.fetch(
        "SELECT receipt_ref, count(*) AS n, max(at) AS last FROM audit_events "
        "WHERE event IN ('secret.revealed', 'secret.burned', 'secret.expired') "
        "AND receipt_ref = ANY($1) GROUP BY receipt_ref",
        [crypto.lookup_id(svc.keys, c.receipt_key) for c in created],
    )
    assert len(terminal) == SECRETS
    assert {row["n"] for row in terminal} == {1}  # exactly one outcome each
    late = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE event = 'secret.revealed' AND at >= $1 "
        "AND receipt_ref = ANY($2)",
        deadline,
        [row["receipt_ref"] for row in terminal],
    )
    publish(
        "reveal_burn_sweep_race",
        secrets=SECRETS,
        consume_attempts=len(jobs),
        **states,
        not_exactly_one_outcome=sum(1 for row in terminal if row["n"] != 1),
        revealed_after_expiry=late,
    )
    assert late == 0  # nothing revealed at or after its expiry
