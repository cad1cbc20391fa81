"""Consume-once under concurrency: many callers, exactly one value."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from tests.factories import V2, Client, conceal, get, reveal

CALLERS = 50


async def test_fifty_concurrent_reveals_have_one_winner(client: Client) -> None:
    for _ in range(3):
        pair = await conceal(client, "only once")
        results = await asyncio.gather(*(reveal(client, pair.secret_key) for _ in range(CALLERS)))
        statuses = Counter(status for status, _ in results)
        assert statuses == {200: 1, 404: CALLERS - 1}
        values = [body["record"]["secret_value"] for status, body in results if status == 200]
        assert values == ["only once"]
        losers = {body["message"] for status, body in results if status == 404}
        assert losers == {"Unknown secret"}


async def test_reveal_racing_burn_has_exactly_one_outcome(
    client: Client, db: asyncpg.Connection
) -> None:
    for _ in range(5):
        pair = await conceal(client, "contested")
        reveals = [reveal(client, pair.secret_key) for _ in range(10)]
        burns = [
            client.post(f"{V2}/private/{pair.receipt_key}/burn", json={"continue": True})
            for _ in range(10)
        ]
        revealed = await asyncio.gather(*reveals, *burns)
        winners = [r for r in revealed[:10] if r[0] == 200]
        assert all(r.status == 200 for r in revealed[10:])  # burning is idempotent
        status, receipt = await get(client, f"/private/{pair.receipt_key}")
        assert status == 200
        state = receipt["record"]["state"]
        assert state in ("received", "burned")
        assert len(winners) == (1 if state == "received" else 0)
        assert await db.fetchval("SELECT count(*) FROM secrets") == 0


async def test_passphrase_reveals_race_too(client: Client) -> None:
    pair = await conceal(client, "guarded", passphrase="correct-horse-1")
    results = await asyncio.gather(
        *(reveal(client, pair.secret_key, passphrase="correct-horse-1") for _ in range(8))
    )
    assert Counter(status for status, _ in results) == {200: 1, 404: 7}
