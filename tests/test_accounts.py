"""Accounts over HTTP: Basic auth, 401s, tokens at rest, /recent, plans, recipients, domains."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from app import crypto
from app.config import Settings
from app.core.accounts import add_customer, disable_customer, rotate_token
from app.keys import SERVICES
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import TEST_KEYS, V2, Client

Body = dict[str, Any]
Headers = dict[str, str]
A, B = "a@example.com", "b@example.com"
GO: Body = {"continue": True}


def basic(user: str, token: str) -> Headers:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def raw(value: str) -> Headers:
    return {"Authorization": value}


async def account(client: Client, email: str = A, plan: str = "basic") -> Headers:
    return basic(email, await add_customer(client.app[SERVICES], email, plan))


async def call(
    client: Client, method: str, path: str, auth: Headers | None = None, **json: Any
) -> tuple[int, Body]:
    response = await client.request(method, V2 + path, json=json or None, headers=auth)
    return response.status, await response.json()


async def post(client: Client, auth: Headers | None = None, **fields: Any) -> tuple[int, Body]:
    return await call(client, "POST", "/secret/conceal", auth, secret={"secret": "hello", **fields})


async def create(client: Client, auth: Headers | None = None, **fields: Any) -> Body:
    status, created = await post(client, auth, **fields)
    assert status == 200, created
    return created


async def refused(
    client: Client, db: asyncpg.Connection, auth: Headers | None = None, **fields: Any
) -> str:
    """A create that gets 422 and stores nothing; returns the message."""
    before = await count(db)
    status, body = await post(client, auth, **fields)
    assert (status, body["success"], await count(db)) == (422, False, before), body
    message: str = body["message"]
    return message


def keys(body: Body) -> tuple[str, str]:
    """(secret key, receipt key) of a create response."""
    return body["record"]["secret"]["key"], body["record"]["metadata"]["key"]


async def count(db: asyncpg.Connection, table: str = "receipts") -> int:
    result: int = await db.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608  # fixed names
    return result


async def test_basic_auth_on_every_endpoint(client: Client) -> None:
    auth = await account(client)
    body = await create(client, auth)
    assert (body["custid"], body["record"]["metadata"]["custid"]) == (A, A)
    secret, receipt = keys(body)
    assert (await call(client, "GET", f"/secret/{secret}", auth))[0] == 200
    status, shown = await call(client, "GET", f"/private/{receipt}", auth)
    assert (status, shown["record"]["custid"]) == (200, A)
    status, revealed = await call(client, "POST", f"/secret/{secret}/reveal", auth, **GO)
    assert (status, revealed["record"]["secret_value"]) == (200, "hello")
    status, made = await call(client, "POST", "/secret/generate", auth, secret={})
    assert (status, made["custid"]) == (200, A)
    status, burned = await call(client, "POST", f"/private/{keys(made)[1]}/burn", auth, **GO)
    assert (status, burned["record"]["state"]) == (200, "burned")


BAD: dict[str, Callable[[str], Headers]] = {
    "unknown user": lambda token: basic("nobody@example.com", token),
    "wrong token": lambda token: basic(A, token[::-1]),
    "bad base64": lambda _: raw("Basic !!not*base64!!"),
    "no colon": lambda token: raw("Basic " + base64.b64encode(f"{A}{token}".encode()).decode()),
    "empty user": lambda token: basic("", token),
    "empty token": lambda _: basic(A, ""),
    "scheme only": lambda _: raw("Basic"),
    "not utf-8": lambda _: raw("Basic " + base64.b64encode(b"\xff:\xfe").decode()),
    # PostgreSQL text cannot hold NUL: the name was looked up and gave a 500.
    "NUL in the name": lambda token: basic("a\x00b@example.com", token),
    "NUL in the token": lambda token: basic(A, token + "\x00"),
    "other scheme": lambda _: raw("Bearer x"),
}


async def expect_401(client: Client, method: str, path: str, auth: Headers, **json: Any) -> None:
    response = await client.request(method, V2 + path, json=json or None, headers=auth)
    assert response.status == 401, path
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["success"] is False
    assert body["message"]


async def refused_everywhere(client: Client, db: asyncpg.Connection, auth: Headers) -> None:
    """401 on every endpoint, and nothing created, revealed or burned."""
    secret, receipt = keys(await create(client))
    await expect_401(client, "POST", "/secret/conceal", auth, secret={"secret": "x"})
    await expect_401(client, "POST", "/secret/generate", auth, secret={})
    await expect_401(client, "GET", f"/secret/{secret}", auth)
    await expect_401(client, "POST", f"/secret/{secret}/reveal", auth, **GO)
    await expect_401(client, "GET", f"/private/{receipt}", auth)
    await expect_401(client, "POST", f"/private/{receipt}/burn", auth, **GO)
    await expect_401(client, "GET", "/private/recent", auth)
    assert (await count(db), await count(db, "secrets")) == (1, 1)
    assert await db.fetchval("SELECT state FROM receipts") == "new"


@pytest.mark.parametrize("case", BAD)
async def test_unusable_credentials_are_401_and_change_nothing(
    client: Client, db: asyncpg.Connection, case: str
) -> None:
    token = await add_customer(client.app[SERVICES], A, "basic")
    await refused_everywhere(client, db, BAD[case](token))


async def test_disabled_account_is_refused(client: Client, db: asyncpg.Connection) -> None:
    auth = await account(client)
    await disable_customer(client.app[SERVICES], A)
    await refused_everywhere(client, db, auth)


async def test_rotated_token_replaces_the_old_one(client: Client, db: asyncpg.Connection) -> None:
    old = await account(client)
    new = basic(A, await rotate_token(client.app[SERVICES], A))
    await refused_everywhere(client, db, old)
    assert (await create(client, new))["custid"] == A


async def test_email_matches_case_insensitively(client: Client) -> None:
    token = await add_customer(client.app[SERVICES], "user@example.com", "basic")
    body = await create(client, basic("User@Example.com", token))
    assert body["custid"] == "user@example.com"


async def test_token_is_stored_only_as_a_digest(client: Client, db: asyncpg.Connection) -> None:
    token = await add_customer(client.app[SERVICES], A, "basic")
    digest = await db.fetchval("SELECT token_digest FROM customers WHERE custid = $1", A)
    assert isinstance(digest, bytes)
    assert len(digest) == 32
    assert digest != token.encode()
    assert token.encode() not in digest
    for row in await db.fetch("SELECT c::text AS text FROM customers c"):
        assert token not in row["text"]
        assert token.encode().hex() not in row["text"]


RECENT = ("/private/recent", "/receipt/recent")


@pytest.mark.parametrize("path", RECENT)
async def test_recent_lists_own_receipts(client: Client, path: str) -> None:
    await expect_401(client, "GET", path, {})  # anonymous
    a, b = await account(client), await account(client, B)
    first, second = [keys(await create(client, a)) for _ in range(2)]
    others = [keys(await create(client, b)), keys(await create(client))]
    status, body = await call(client, "GET", path, a)
    assert status == 200, body
    assert (body["count"], body["custid"], body["details"]["type"]) == (2, A, "list")
    assert {r["key"] for r in body["records"]} == {first[1], second[1]}
    assert {r["custid"] for r in body["records"]} == {A}
    assert all("secret_key" not in r for r in body["records"])
    assert not any(pair[0] in str(body) for pair in (first, second, *others))  # no share keys
    assert (await call(client, "POST", f"/secret/{first[0]}/reveal", **GO))[0] == 200
    details = (await call(client, "GET", path, a))[1]["details"]
    assert [r["key"] for r in details["received"]] == [first[1]]
    assert [r["key"] for r in details["notreceived"]] == [second[1]]


async def test_recent_keeps_thirty_days(client: Client, db: asyncpg.Connection) -> None:
    auth = await account(client)
    created = {days: keys(await create(client, auth))[1] for days in (0, 29, 31)}
    ring = client.app[SERVICES].keys
    for days, receipt in created.items():
        moved = "UPDATE receipts SET created_at = now() - make_interval(days => $2) WHERE id = $1"
        await db.execute(moved, crypto.lookup_id(ring, receipt), days)
    body = (await call(client, "GET", "/private/recent", auth))[1]
    assert body["count"] == 2
    assert {r["key"] for r in body["records"]} == {created[0], created[29]}


@pytest.mark.parametrize(("who", "owner"), [("creator", True), ("other", False), ("anon", False)])
async def test_is_owner(client: Client, who: str, owner: bool) -> None:
    a, b = await account(client), await account(client, B)
    auth = {"creator": a, "other": b, "anon": None}[who]
    secret, _ = keys(await create(client, a))
    shown = (await call(client, "GET", f"/secret/{secret}", auth))[1]
    assert shown["details"]["is_owner"] is owner
    status, revealed = await call(client, "POST", f"/secret/{secret}/reveal", auth, **GO)
    assert (status, revealed["details"]["is_owner"]) == (200, owner)


@pytest.mark.parametrize(
    ("plan", "ttl"), [(None, 604800), ("basic", 1209600), ("identity", 2592000)]
)
async def test_ttl_clamps_to_the_plan(client: Client, plan: str | None, ttl: int) -> None:
    auth = await account(client, plan=plan) if plan else None
    record = (await create(client, auth, ttl=99999999))["record"]
    assert (record["secret"]["secret_ttl"], record["metadata"]["metadata_ttl"]) == (ttl, 2 * ttl)


SIZES = [
    pytest.param(None, "a" * 10_000, None, id="anonymous-10000"),
    pytest.param(None, "a" * 10_001, "10000", id="anonymous-10001"),
    pytest.param(None, "é" * 5_001, "10000", id="anonymous-utf8-10002"),
    pytest.param("basic", "a" * 100_000, None, id="basic-100000"),
    pytest.param("basic", "a" * 100_001, "100000", id="basic-100001"),
    pytest.param("identity", "a" * 200_000, None, id="identity-200000"),
]


@pytest.mark.parametrize(("plan", "value", "limit"), SIZES)
async def test_size_limit_per_plan(
    client: Client, db: asyncpg.Connection, plan: str | None, value: str, limit: str | None
) -> None:
    auth = await account(client, plan=plan) if plan else None
    if limit is None:
        assert (await create(client, auth, secret=value))["success"] is True
        assert await count(db) == 1
    else:
        assert limit in await refused(client, db, auth, secret=value)


async def test_configured_plans(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    """OTS_PLAN_<NAME>_MAX_BYTES / _TTL_MAX reach the running app."""
    env = {"DATABASE_URL": "postgresql://x/y", "OTS_KEYS": TEST_KEYS}
    env |= {"OTS_PLAN_IDENTITY_MAX_BYTES": "300", "OTS_PLAN_IDENTITY_TTL_MAX": "7200"}
    plans = Settings.from_env(env).plans
    client = await aiohttp_client(create_app(make_settings(settings, plans=plans)))
    auth = await account(client, plan="identity")
    created = await create(client, auth, secret="a" * 300, ttl=99999999)
    assert created["record"]["secret"]["secret_ttl"] == 7200
    assert "300" in await refused(client, db, auth, secret="a" * 301)


async def test_recipient_needs_an_account(client: Client, db: asyncpg.Connection) -> None:
    message = await refused(client, db, recipient="tom@example.com")
    assert message == "An account is required to send emails."


async def test_recipient_is_stored_obscured(client: Client, db: asyncpg.Connection) -> None:
    auth, safe = await account(client), "to*****m@e*****.com"
    body = await create(client, auth, recipient="tom@example.com")
    assert body["details"]["recipient"] == "tom@example.com"
    assert body["details"]["recipient_safe"] == [safe]
    assert body["record"]["metadata"]["recipients"] == safe
    status, shown = await call(client, "GET", f"/private/{keys(body)[1]}", auth)
    assert (status, shown["record"]["recipients"], shown["record"]["show_recipients"]) == (
        200,
        safe,
        True,
    )
    listed = (await call(client, "GET", "/private/recent", auth))[1]["records"]
    assert [r["recipients"] for r in listed] == [safe]
    for table in ("receipts", "secrets"):
        for row in await db.fetch(f"SELECT t::text AS text FROM {table} t"):  # noqa: S608
            assert "tom@" not in row["text"]
            assert b"tom@example.com".hex() not in row["text"]


async def test_undeliverable_recipient(client: Client, db: asyncpg.Connection) -> None:
    message = await refused(client, db, await account(client), recipient="not-an-email")
    assert message.startswith("Undeliverable email address")


async def test_share_domain_allow_list(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    configured = make_settings(settings, share_domains=("share.example.com",))
    client = await aiohttp_client(create_app(configured))
    secret, receipt = keys(await create(client, share_domain="share.example.com"))
    record = (await call(client, "GET", f"/private/{receipt}"))[1]["record"]
    assert record["share_url"] == f"https://share.example.com/secret/{secret}"
    assert record["metadata_url"] == f"https://ots.example/private/{receipt}"
    assert record["burn_url"] == f"https://ots.example/private/{receipt}/burn"
    page = await (await client.get(f"/receipt/{receipt}")).text()
    assert f"https://share.example.com/secret/{secret}" in page  # the page's link, too
    message = await refused(client, db, share_domain="other.example.com")
    assert message == "Unknown domain: other.example.com"


async def test_share_domain_needs_configuring(client: Client, db: asyncpg.Connection) -> None:
    message = await refused(client, db, share_domain="share.example.com")
    assert message == "Unknown domain: share.example.com"
