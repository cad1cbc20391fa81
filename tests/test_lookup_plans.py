"""A statement that finds secrets or receipts by key finds them by that key, whatever the
statistics say of expiry.

Statistics taken before a mass expiry (a million rows with one TTL) say that almost no
row expires after now(). On that guess PostgreSQL served `id = $1 AND expires_at > now()`
from the expires_at index, reading for each lookup every live row and every row deleted
since the last vacuum: under the lifecycle load, while a million rows expired, a reveal's
first read went from p90 13 to 29 ms (bench/FINDINGS.md, thirteenth round). Only the
sweeper's statements, which look rows up by expiry, may use those indexes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from app.store import batched, lockouts, secrets
from tests.test_sweeper_plan import generic_plan, nodes

EXPIRY_INDEXES = {"ix_secrets_expires_at", "ix_receipts_expires_at"}
EXPIRED, LIVE = 20_000, 200
READS, TABLES = ("FROM", "JOIN"), ("secrets", "receipts")

# Every row the statistics see has expired: as just after a mass expiry, before the
# sweeper has taken them. The live rows come after the ANALYZE, as they would.
ROWS = """
WITH made AS (
    INSERT INTO receipts (id, key_id, secret_shortkey, custid, kind, state, secret_ttl,
                          receipt_ttl, has_passphrase, value_claimable, expires_at)
    SELECT sha256(int8send(-k)), 1, 'abcdef', 'anon', 'conceal', 'new', 3600, 7200,
           false, false, now() + $3 * interval '2 seconds'
      FROM generate_series($1::bigint, $2::bigint) k
)
INSERT INTO secrets (id, receipt_id, key_id, ciphertext, value_bytes, expires_at)
SELECT sha256(int8send(k)), sha256(int8send(-k)), 1, '\\x00', 1, now() + $3 * interval '1 second'
  FROM generate_series($1::bigint, $2::bigint) k
"""


def lookups() -> Iterator[tuple[str, str]]:
    """Every statement of the request path that reads secrets or receipts and checks
    their expiry, by name."""
    for module in (secrets, batched, lockouts):
        for name, value in vars(module).items():
            sql = getattr(value, "sql", value)
            if not (name.isupper() and isinstance(sql, str)) or "{" in sql:  # a template
                continue
            reads = any(f"{how} {table}" in sql for how in READS for table in TABLES)
            if reads and "expires_at" in sql:
                yield f"{module.__name__.rsplit('.', 1)[1]}.{name}", sql


LOOKUPS = dict(lookups())


def indexes_used(plan: dict[str, Any]) -> Iterator[str]:
    return (node["Index Name"] for node in nodes(plan) if "Index Name" in node)


def test_the_request_path_has_lookups_to_check() -> None:
    names = set(LOOKUPS)
    expected = {"secrets.PEEK", "secrets.CONSUME", "secrets.GET_RECEIPT", "lockouts.ROW_LOCK"}
    assert expected | {"batched.CONSUME_MANY", "secrets.PEEKS_COUNTED"} <= names


@pytest.mark.parametrize("name", sorted(LOOKUPS))
async def test_a_lookup_by_key_never_uses_an_expiry_index(
    db: asyncpg.Connection, name: str
) -> None:
    await db.execute(ROWS, 1, EXPIRED, -3600)
    await db.execute("ANALYZE receipts, secrets")
    await db.execute(ROWS, EXPIRED + 1, EXPIRED + LIVE, 3600)
    plan = await generic_plan(db, LOOKUPS[name])
    assert EXPIRY_INDEXES.isdisjoint(indexes_used(plan))
