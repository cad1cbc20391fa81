"""Tamper evidence: the chains verify under concurrency and break where a row was touched;
export, prune and the admin API. Each test gets its own database, since it tampers."""

from __future__ import annotations

import asyncio
import base64
import csv
import dataclasses
import hmac
import io
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from app import migrate
from app.config import DatabaseConfig, Settings
from app.core import trail
from app.core.accounts import add_customer
from app.core.audit import Event, canonical, chain_hash, chained, chained_alike
from app.keys import SERVICES
from app.server import create_app
from app.store import audit as audit_store
from app.store.db import Db
from tests.conftest import _with_database, make_settings, throwaway_database
from tests.factories import TEST_KEYS, V2, Client, conceal, reveal


@pytest.fixture
def fresh_url(server_url: str) -> Iterator[str]:
    with throwaway_database(server_url, "audit") as url:
        yield url


@pytest.fixture
async def fresh_db(fresh_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fresh_url)
    yield conn
    await conn.close()


@pytest.fixture
async def fresh(
    fresh_db: asyncpg.Connection,
    fresh_url: str,
    aiohttp_client: AiohttpClient,
    settings: Settings,
) -> Client:
    changed = make_settings(settings, database=DatabaseConfig(url=fresh_url, pool_max=20))
    return await aiohttp_client(create_app(changed))


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "app", "audit", *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "OTS_KEYS": TEST_KEYS},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_COPIED = (
    "seq, at, event, outcome, actor, client_ip, user_agent, request_id, receipt_ref,"
    " detail, chain_hash"
)


_COPY_ROW = f"""
INSERT INTO audit_events (part, {_COPIED})
SELECT {{part}}, {_COPIED} FROM audit_events WHERE id = $1
"""  # noqa: S608  # constants only


async def _tamper(db: asyncpg.Connection, statement: str) -> int:
    """As a superuser would: switch the trigger off, change a row, switch it back."""
    row_id: int = await db.fetchval(  # a row in the middle of its chain
        "SELECT id FROM audit_events e WHERE EXISTS (SELECT 1 FROM audit_events f "
        "WHERE f.part = e.part AND f.seq > e.seq) ORDER BY id LIMIT 1"
    )
    await db.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
    await db.execute(statement, row_id)
    await db.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change")
    return row_id


@pytest.mark.parametrize(
    "event",
    [
        Event("secret.expired", "success", "system", receipt_ref=bytes(range(32))),
        Event(
            'x\u00e9"\\/\x00\x1f\u2028 \U0001f512',
            "failure",
            "ünï@example.com",
            client_ip="2001:db8::1",
            user_agent="Mozilla/5.0 (\t) \ud800",
            request_id="r-1",
            detail="{}[],:",
        ),
    ],
)
def test_rows_are_hashed_over_json_dumps_of_their_fields(event: Event) -> None:
    """The hand-written encoding must stay byte for byte json.dumps's: rows already in
    the trail were hashed over that."""
    at = datetime(2026, 11, 29, 1, 2, 3, 456789, tzinfo=UTC)
    [row] = chained(b"k" * 32, 7, (41, b"p" * 32), at, [event])
    fields = [
        7,
        42,
        (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
        event.event,
        event.outcome,
        event.actor,
        event.client_ip,
        event.user_agent,
        event.request_id,
        event.receipt_ref.hex() if event.receipt_ref is not None else None,
        event.detail,
    ]
    encoded = json.dumps(fields, separators=(",", ":")).encode()
    assert canonical(row) == encoded
    assert row.chain_hash == hmac.digest(b"k" * 32, b"p" * 32 + encoded, "sha256")
    assert chain_hash(b"k" * 32, b"p" * 32, row) == row.chain_hash


@pytest.mark.parametrize("part", [0, 63])
def test_events_alike_hash_as_the_same_events_each_made(part: int) -> None:
    """The sweeper's shortcut (chained_alike, given each receipt in hex as the sweep reads
    it) must give the hashes chained() gives the events made one by one, whatever the
    fields they share and however long a receipt id is."""
    at = datetime(2026, 11, 29, 1, 2, 3, 456789, tzinfo=UTC)
    like = Event('x\u00e9"\\', "failure", "ünï@example.com", "::1", "UA \ud800", "r-1", detail="{}")
    refs = [bytes(range(32)), b"\x00" * 16, bytes(range(255, 223, -1)), b"\xab"]
    events = [dataclasses.replace(like, receipt_ref=ref) for ref in refs]
    head = (99, b"h" * 32)
    rows = chained(b"k" * 32, part, head, at, events)
    hashes = chained_alike(b"k" * 32, part, head, at, like, [ref.hex() for ref in refs])
    assert hashes == [row.chain_hash for row in rows]
    assert len(set(hashes)) == len(refs)


async def test_a_write_while_verifying_is_not_a_break(
    fresh: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chain grows between the read of its head and the read of its rows: in one
    # snapshot neither the new row nor the moved head is seen, so nothing is broken.
    for n in range(5):
        await conceal(fresh, f"v{n}")
    read_heads = audit_store.heads

    async def heads_then_a_write(db: Db) -> list[audit_store.ChainHead]:
        found = await read_heads(db)
        await conceal(fresh, "while verifying")
        return found

    monkeypatch.setattr(audit_store, "heads", heads_then_a_write)
    checked, broken = await trail.verify(fresh.app[SERVICES])
    assert broken is None, str(broken)
    assert checked == 5
    monkeypatch.undo()
    assert await trail.verify(fresh.app[SERVICES]) == (6, None)


async def test_concurrent_writers_leave_a_chain_that_verifies(
    fresh: Client, fresh_db: asyncpg.Connection, fresh_url: str
) -> None:
    pairs = await asyncio.gather(*(conceal(fresh, f"v{n}") for n in range(100)))
    await asyncio.gather(*(reveal(fresh, p.secret_key) for p in pairs))
    assert await fresh_db.fetchval("SELECT count(*) FROM audit_events") == 200
    result = _cli(fresh_url, "verify")
    assert result.returncode == 0, result.stderr
    assert "intact: 200 events" in result.stdout


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE audit_events SET actor = 'someone else' WHERE id = $1", "row altered"),
        ("DELETE FROM audit_events WHERE id = $1", "row missing"),
        # No unique index on (part, seq) since migration 0012: a copy gets in.
        (_COPY_ROW.format(part="part"), "seq repeated"),
        (_COPY_ROW.format(part="64"), "row of no chain"),  # chains are 0 to 63
    ],
)
async def test_tampering_breaks_the_chain_at_the_row(
    fresh: Client, fresh_db: asyncpg.Connection, fresh_url: str, statement: str, reason: str
) -> None:
    # Enough events that some chain holds two (tampering needs a row with one after it):
    # 40 events in at most 64 chains leave none with two about once in 10^7 runs.
    for n in range(40):
        await conceal(fresh, f"v{n}")
    assert _cli(fresh_url, "verify").returncode == 0
    row_id = await _tamper(fresh_db, statement)
    result = _cli(fresh_url, "verify")
    assert result.returncode == 1
    assert reason in result.stderr
    if reason == "row altered":
        assert f"row id {row_id}" in result.stderr


async def test_cutting_the_tail_is_detected(
    fresh: Client, fresh_db: asyncpg.Connection, fresh_url: str
) -> None:
    await conceal(fresh, "v")
    await fresh_db.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
    await fresh_db.execute("DELETE FROM audit_events")
    result = _cli(fresh_url, "verify")
    assert result.returncode == 1
    assert "rows missing at the end" in result.stderr


async def test_no_secret_material_in_the_trail(fresh: Client, fresh_db: asyncpg.Connection) -> None:
    token = await add_customer(fresh.app[SERVICES], "marker@example.com", "basic")
    auth = {
        "Authorization": "Basic "
        + base64.b64encode(f"marker@example.com:{token}".encode()).decode()
    }
    value, passphrase = "MARKER-VALUE-55aa", "MARKER-PASS-66bb"
    response = await fresh.post(
        f"{V2}/secret/conceal",
        json={"secret": {"secret": value, "passphrase": passphrase}},
        headers=auth,
    )
    record = (await response.json())["record"]
    await reveal(fresh, record["secret"]["key"], passphrase="MARKER-WRONG-77cc")
    await reveal(fresh, record["secret"]["key"], passphrase=passphrase)
    rows = await fresh_db.fetch("SELECT audit_events::text AS row FROM audit_events")
    dump = "\n".join(r["row"] for r in rows)
    assert len(rows) >= 4
    for marker in (
        value,
        passphrase,
        "MARKER-WRONG-77cc",
        token,
        record["secret"]["key"],
        record["metadata"]["key"],
    ):
        assert marker not in dump


async def test_prune_keeps_the_rest_verifiable(
    fresh: Client, fresh_db: asyncpg.Connection, fresh_url: str
) -> None:
    for n in range(6):
        await conceal(fresh, f"old {n}")
    cut = await fresh_db.fetchval("SELECT clock_timestamp()")
    for n in range(3):
        await conceal(fresh, f"new {n}")
    result = _cli(fresh_url, "prune", "--before", cut.isoformat())
    assert result.returncode == 0, result.stderr
    assert "pruned 6 events" in result.stdout
    events = [
        r["event"] for r in await fresh_db.fetch("SELECT event FROM audit_events ORDER BY id")
    ]
    assert events == ["secret.created"] * 3 + ["audit.pruned"]
    await conceal(fresh, "after the prune")
    verify = _cli(fresh_url, "verify")
    assert verify.returncode == 0, verify.stderr
    assert "intact: 5 events" in verify.stdout


async def test_export_streams_jsonl_and_csv(fresh: Client, fresh_url: str) -> None:
    for n in range(3):
        await conceal(fresh, f"v{n}")
    jsonl = _cli(fresh_url, "export", "--since", "2000-01-01", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["secret.created"] * 3
    assert all(len(bytes.fromhex(line["receipt_ref"])) == 32 for line in lines)
    table = _cli(fresh_url, "export", "--format", "csv", "--until", "2000-01-01")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert table.returncode == 0
    assert rows == []  # nothing before 2000
    table = _cli(fresh_url, "export", "--format", "csv")
    assert [row["event"] for row in csv.DictReader(io.StringIO(table.stdout))] == [
        "secret.created"
    ] * 3


async def test_admin_api_pages_through_events(fresh: Client) -> None:
    svc = fresh.app[SERVICES]
    admin = await add_customer(svc, "auditor@example.com", "basic", admin=True)
    plain = await add_customer(svc, "user@example.com", "basic")
    for n in range(5):
        await conceal(fresh, f"v{n}")
    response = await fresh.get(f"{V2}/audit")
    assert response.status == 401
    response = await fresh.get(f"{V2}/audit", headers=_auth("user@example.com", plain))
    assert response.status == 403
    seen: list[int] = []
    after = 0
    while True:
        response = await fresh.get(
            f"{V2}/audit?since=2000-01-01&limit=2&after={after}",
            headers=_auth("auditor@example.com", admin),
        )
        body = await response.json()
        assert response.status == 200, body
        seen += [r["id"] for r in body["records"]]
        if body["next_after"] is None:
            break
        after = body["next_after"]
    assert len(seen) == len(set(seen)) >= 7  # 2 token.created + 5 secret.created (+ reads)
    assert seen == sorted(seen)
    bad = await fresh.get(
        f"{V2}/audit?since=yesterday", headers=_auth("auditor@example.com", admin)
    )
    assert bad.status == 422


def _auth(user: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


async def test_migration_grants_the_app_role_insert_and_select_only(server_url: str) -> None:
    admin = await asyncpg.connect(server_url)
    name = f"grants_{uuid.uuid4().hex[:12]}"
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'ots_app'"):
            await admin.execute("CREATE ROLE ots_app NOLOGIN")
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(server_url, name)
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(url)
        try:
            granted = {
                privilege: await conn.fetchval(
                    "SELECT has_table_privilege('ots_app', 'audit_events', $1)", privilege
                )
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            }
        finally:
            await conn.close()
        assert granted == {
            "SELECT": True,
            "INSERT": True,
            "UPDATE": False,
            "DELETE": False,
            "TRUNCATE": False,
        }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
