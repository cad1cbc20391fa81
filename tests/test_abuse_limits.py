"""Limits every pod agrees on: passphrase lockout under concurrency, request rate limits,
and the client address behind trusted proxies."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from ipaddress import ip_network

import asyncpg
from prometheus_client import REGISTRY
from pytest_aiohttp import AiohttpClient

from app.config import DEFAULT_RATE_LIMITS, RateLimits, Settings
from app.core.accounts import add_customer
from app.keys import SERVICES
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import V2, Client, conceal, early_in_a_rate_window, reveal

RIGHT = "correct-horse-1"
RATE_LIMITED = "Cripes! You have been rate limited."


async def test_fifty_concurrent_wrong_guesses_get_exactly_five_checks(client: Client) -> None:
    pair = await conceal(client, "guarded", passphrase=RIGHT)
    results = await asyncio.gather(
        *(reveal(client, pair.secret_key, passphrase=f"wrong-guess-{n}") for n in range(50))
    )
    statuses = Counter(status for status, _ in results)
    assert statuses == {422: 5, 429: 45}
    status, body = await reveal(client, pair.secret_key, passphrase=RIGHT)
    assert status == 429  # the lock holds even for the right passphrase
    assert body["retry_after"] > 0


async def _limited_client(
    db: asyncpg.Connection,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    show_secret: int = 1000,
    create_secret: int = 1000,
    show_metadata: int = 1000,
    **changes: object,
) -> Client:
    limits = dict(DEFAULT_RATE_LIMITS) | {
        "show_secret": show_secret,
        "create_secret": create_secret,
        "show_metadata": show_metadata,
    }
    rate_limits = RateLimits(window_seconds=60, per_event=tuple(limits.items()))
    await early_in_a_rate_window(db, rate_limits.window_seconds)
    return await aiohttp_client(
        create_app(make_settings(settings, rate_limits=rate_limits, **changes))
    )


async def _show(client: Client, key: str, **headers: str) -> int:
    response = await client.get(f"{V2}/secret/{key}", headers=headers)
    if response.status == 429:
        body = await response.json()
        assert body["message"] == RATE_LIMITED
        assert 0 < int(response.headers["Retry-After"]) <= 60
    return response.status


async def test_rate_limit_per_client_and_event(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await _limited_client(db, aiohttp_client, settings, show_secret=3)
    pair = await conceal(client, "x")
    assert [await _show(client, pair.secret_key) for _ in range(4)] == [200, 200, 200, 429]
    other_event = await client.get(f"{V2}/private/{pair.receipt_key}")
    assert other_event.status == 200  # show_metadata has its own counter


async def test_reveals_of_unknown_and_malformed_keys_are_counted_too(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    # The count shares its round trip with the read: a key that finds nothing, or that
    # cannot be a key at all, must count all the same.
    client = await _limited_client(db, aiohttp_client, settings, show_secret=3)
    unknown = "a" * 31  # the shape of a link key, behind which there is nothing
    statuses = [
        (await client.post(f"{V2}/secret/{key}/reveal", json={"continue": True})).status
        for key in (unknown, "not-a-key!", unknown, "not-a-key!")
    ]
    assert statuses == [404, 404, 404, 429]
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'show_secret'") == 4


async def test_a_create_over_the_limit_writes_nothing(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    # A plain create is counted by the very statement that writes it: over the limit, that
    # statement must write neither the pair nor its audit event.
    since = await db.fetchval("SELECT now()")
    client = await _limited_client(db, aiohttp_client, settings, create_secret=3)
    statuses = [
        (await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": f"v{n}"}})).status
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    assert await db.fetchval("SELECT count(*) FROM secrets") == 3
    assert await db.fetchval("SELECT count(*) FROM receipts") == 3
    created = "SELECT count(*) FROM audit_events WHERE event = $1 AND at >= $2"
    assert await db.fetchval(created, "secret.created", since) == 3
    assert await db.fetchval(created, "rate.limited", since) == 1  # once per window


async def test_refused_creates_count_and_the_limit_answers_first(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await _limited_client(db, aiohttp_client, settings, create_secret=2)
    empty = {"secret": {"secret": ""}}  # refused by the rules, counted all the same
    statuses = [(await client.post(f"{V2}/secret/conceal", json=empty)).status for _ in range(3)]
    assert statuses == [422, 422, 429]
    fine = await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": "v"}})
    assert fine.status == 429
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'create_secret'") == 4
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0


async def test_receipt_reads_over_the_limit_are_refused_and_not_recorded(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await _limited_client(db, aiohttp_client, settings, show_metadata=3)
    pair = await conceal(client, "x")
    since = await db.fetchval("SELECT now()")
    paths = [pair.receipt_key, "a" * 31, pair.receipt_key, pair.receipt_key]
    statuses = [(await client.get(f"{V2}/private/{path}")).status for path in paths]
    assert statuses == [200, 404, 200, 429]
    viewed = "SELECT count(*) FROM audit_events WHERE event = 'receipt.viewed' AND at >= $1"
    assert await db.fetchval(viewed, since) == 2


async def test_concurrent_requests_lose_no_count(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await _limited_client(db, aiohttp_client, settings, show_secret=10)
    pair = await conceal(client, "x")
    statuses = await asyncio.gather(*(_show(client, pair.secret_key) for _ in range(30)))
    assert Counter(statuses) == {200: 10, 429: 20}
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'show_secret'") == 30


async def test_concurrent_creates_over_the_limit_are_refused_exactly(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    # Concurrent creates are counted in batches (app/core/counts.py): still exactly the
    # limit gets through, and the refusal is recorded once.
    since = await db.fetchval("SELECT now()")
    client = await _limited_client(db, aiohttp_client, settings, create_secret=10)
    assert await _burst([client], 30) == {200: 10, 429: 20}
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'create_secret'") == 30
    assert await db.fetchval("SELECT count(*) FROM secrets") == 10
    limited = "SELECT count(*) FROM audit_events WHERE event = 'rate.limited' AND at >= $1"
    assert await db.fetchval(limited, since) == 1


async def test_a_client_far_below_its_limit_goes_on_before_its_count_is_back(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    # app/core/headroom.py: after the first, counted while it waits, these creates go on
    # at once and are counted in the background; every one of them is still counted.
    client = await _limited_client(db, aiohttp_client, settings, create_secret=1000)
    early = _counted_early("create_secret")
    await _creates(client, 20)
    await client.app[SERVICES].counts.wait_idle(5)
    assert _counted_early("create_secret") - early >= 10
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'create_secret'") == 20
    assert await db.fetchval("SELECT count(*) FROM secrets") == 20


async def test_requests_let_through_early_never_take_a_process_past_the_limit(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    # A limit of 128: early below 32, with at most 2 early counts in flight. A burst from
    # a client known to be far below its limit still gets exactly the limit through.
    client = await _limited_client(db, aiohttp_client, settings, create_secret=128)
    await _creates(client, 5)
    early = _counted_early("create_secret")
    assert await _burst([client], 200) == {200: 123, 429: 77}
    assert _counted_early("create_secret") > early  # the burst did start early
    await client.app[SERVICES].counts.wait_idle(5)
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'create_secret'") == 205
    assert await db.fetchval("SELECT count(*) FROM secrets") == 128


async def test_two_processes_let_a_burst_past_the_limit_by_at_most_their_early_counts(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    # Two pods on one database, a limit of 128: each may be ahead of what it knows by at
    # most its 2 early counts in flight, so at most 4 creates past the limit.
    pods = [await _limited_client(db, aiohttp_client, settings, create_secret=128) for _ in "ab"]
    for pod in pods:
        await _creates(pod, 5)
    through = (await _burst(pods, 200))[200]
    assert 118 <= through <= 118 + 4
    for pod in pods:
        await pod.app[SERVICES].counts.wait_idle(5)
    assert await db.fetchval("SELECT hits FROM rate_counters WHERE event = 'create_secret'") == 210
    assert await db.fetchval("SELECT count(*) FROM secrets") == 10 + through


async def _creates(client: Client, n: int) -> None:
    """`n` creates one after another, each let through."""
    for i in range(n):
        assert (await conceal(client, f"v{i}")).secret_key


async def _burst(clients: list[Client], n: int) -> Counter[int]:
    """The statuses of `n` concurrent creates, spread over `clients` in turn."""
    body = {"secret": {"secret": "v"}}
    posts = (clients[i % len(clients)].post(f"{V2}/secret/conceal", json=body) for i in range(n))
    return Counter(r.status for r in await asyncio.gather(*posts))


def _counted_early(event: str) -> float:
    return REGISTRY.get_sample_value("ots_rate_counted_early_total", {"event": event}) or 0.0


async def test_accounts_count_apart_and_paid_plans_are_not_limited(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await _limited_client(db, aiohttp_client, settings, show_secret=1)
    svc = client.app[SERVICES]
    pair = await conceal(client, "x")
    basic = await add_customer(svc, "basic@example.com", "basic")
    paid = await add_customer(svc, "paid@example.com", "identity")
    assert await _show(client, pair.secret_key) == 200
    assert await _show(client, pair.secret_key) == 429
    auth = {"Authorization": _basic("basic@example.com", basic)}
    assert [await _show(client, pair.secret_key, **auth) for _ in range(2)] == [200, 429]
    auth = {"Authorization": _basic("paid@example.com", paid)}
    assert [await _show(client, pair.secret_key, **auth) for _ in range(5)] == [200] * 5


async def test_forwarded_address_is_used_only_from_trusted_proxies(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    untrusting = await _limited_client(db, aiohttp_client, settings, show_secret=1)
    pair = await conceal(untrusting, "x")
    assert await _show(untrusting, pair.secret_key, **_xff("203.0.113.5")) == 200
    assert await _show(untrusting, pair.secret_key, **_xff("203.0.113.6")) == 429  # one peer


async def test_forwarded_chain_is_walked_from_the_right(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    proxies = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))
    client = await _limited_client(
        db, aiohttp_client, settings, show_secret=1, trusted_proxies=proxies
    )
    pair = await conceal(client, "x")
    assert await _show(client, pair.secret_key, **_xff("203.0.113.5")) == 200
    assert await _show(client, pair.secret_key, **_xff("203.0.113.5")) == 429
    assert await _show(client, pair.secret_key, **_xff("203.0.113.6, 10.1.2.3")) == 200
    # A client cannot pick its own bucket by prepending an address: the rightmost
    # untrusted hop is the one the proxy saw.
    assert await _show(client, pair.secret_key, **_xff("198.51.100.1, 203.0.113.5")) == 429


async def test_a_forwarded_address_is_one_plain_address_written_one_way(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    """Python reads "fe80::1%<anything>" as an address with a scope, whatever the scope
    holds: bytes that are not UTF-8 were a 500 (test_header_fuzz.py found it), and each
    made-up scope was a bucket of its own. A scoped hop is no address (the peer counts);
    an IPv4 address mapped into IPv6 is its IPv4 address, in the buckets and the trail."""
    proxies = (ip_network("127.0.0.1/32"),)
    client = await _limited_client(
        db, aiohttp_client, settings, show_secret=1, trusted_proxies=proxies
    )
    before = await db.fetchval("SELECT coalesce(max(id), 0) FROM audit_events")
    pair = await conceal(client, "x")
    assert await _show(client, pair.secret_key, **_xff("fe80::1%1")) == 200
    assert await _show(client, pair.secret_key, **_xff("fe80::1%2")) == 429  # the peer's
    assert await _show(client, pair.secret_key, **_xff("203.0.113.7")) == 200
    assert await _show(client, pair.secret_key, **_xff("::ffff:203.0.113.7")) == 429
    assert await _show(client, pair.secret_key, **_xff("::FFFF:cb00:7107")) == 429
    recorded = await db.fetch("SELECT DISTINCT client_ip FROM audit_events WHERE id > $1", before)
    assert {row["client_ip"] for row in recorded} == {"127.0.0.1", "203.0.113.7"}


def _xff(value: str) -> dict[str, str]:
    return {"X-Forwarded-For": value}


def _basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
