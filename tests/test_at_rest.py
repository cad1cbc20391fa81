"""Nothing readable at rest: no value, passphrase or link key appears in any stored row."""

from __future__ import annotations

import asyncpg

from tests.factories import Client, burn, conceal, generate, get, reveal

TABLES = ("receipts", "secrets", "passphrase_attempts", "passphrase_lockouts")


async def _everything_stored(db: asyncpg.Connection) -> bytes:
    """Every row of every table, as text and as raw bytes of each bytea column."""
    dump = []
    for table in TABLES:
        rows = await db.fetch(f"SELECT * FROM {table}")  # noqa: S608  # fixed table names
        for row in rows:
            for value in row.values():
                dump.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(dump)


async def test_no_plaintext_or_capability_is_stored(client: Client, db: asyncpg.Connection) -> None:
    value = "MARKER-VALUE-7f3a9c"
    passphrase = "MARKER-PASS-19b2e4"
    plain = await conceal(client, value)
    guarded = await conceal(client, value + "-2", passphrase=passphrase)
    generated = await generate(client)
    _, receipt = await get(client, f"/private/{generated.receipt_key}")
    generated_value = receipt["details"]["secret_value"]
    await reveal(client, guarded.secret_key, passphrase="not-the-passphrase")
    stored = await _everything_stored(db)
    markers = [value, passphrase, generated_value]
    for pair in (plain, guarded, generated):
        markers += [pair.secret_key, pair.receipt_key]
    for marker in markers:
        assert marker.encode() not in stored, marker
    assert b"127.0.0.1" not in stored


async def test_consumed_secrets_leave_no_ciphertext(client: Client, db: asyncpg.Connection) -> None:
    revealed = await conceal(client, "one")
    burned = await conceal(client, "two")
    await reveal(client, revealed.secret_key)
    await burn(client, burned.receipt_key)
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    sealed = await db.fetch("SELECT share_key_sealed FROM receipts")
    assert [r["share_key_sealed"] for r in sealed] == [None, None]
