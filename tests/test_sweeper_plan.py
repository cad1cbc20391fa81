"""The sweeper's batch statement stays linear in its batch under the plan PostgreSQL
caches for it.

After five runs of a prepared statement PostgreSQL may keep a generic plan, made without
the parameters' values: it then guesses ten rows for each array the statement unnests.
On that guess a nested loop that reads a whole CTE for every row of another is cheap, and
on a batch of 2,000 it compares 4,000,000 pairs: the sweeper fell from 24,000 to 8,400
rows/s, PostgreSQL's CPU per row from 30 to 110 us (bench/FINDINGS.md). A nested loop
whose inner side is an index or TID lookup stays linear whatever the guess."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from app.store.expiry import PURGE_EXPIRED, PURGE_RECEIPTS, PURGE_SECRETS

# Scans that read a whole CTE, unnested array or table: as a nested loop's inner side,
# read once per outer row.
WHOLE_SCANS = {"CTE Scan", "Function Scan", "Seq Scan"}
PASS_THROUGH = {"Materialize", "Memoize"}
SINGLE_ROWS = {"head", "guard"}  # store.audit's CTEs of one row


async def generic_plan(db: asyncpg.Connection, sql: str) -> dict[str, Any]:
    """The plan PostgreSQL would cache for `sql` once it settles on a generic one."""
    oids = [t.oid for t in (await db.prepare(sql)).get_parameters()]
    types = await db.fetchval(
        "SELECT array_agg(format_type(o, NULL) ORDER BY n) FROM unnest($1::oid[])"
        " WITH ORDINALITY AS t(o, n)",
        oids,
    )
    await db.execute("SET plan_cache_mode = force_generic_plan")
    await db.execute(f"PREPARE batch_statement ({', '.join(types)}) AS {sql}")
    nulls = ", ".join(["NULL"] * len(types))
    explained = await db.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE batch_statement ({nulls})")
    await db.execute("DEALLOCATE batch_statement")
    await db.execute("RESET plan_cache_mode")
    plan: dict[str, Any] = json.loads(explained)[0]["Plan"]
    return plan


def quadratic_loops(node: dict[str, Any]) -> Iterator[str]:
    """Nested loops that compare pairs (a join filter) or read a whole CTE, array or table
    for each outer row. The generic plan guesses one row for every CTE made from the
    batch, so only the chain's head and the audit guard, single rows by construction, may
    drive one."""
    children = node.get("Plans", [])
    if node["Node Type"] == "Nested Loop":
        side = {child.get("Parent Relationship"): _through(child) for child in children}
        outer, inner = side["Outer"], side["Inner"]
        single = outer["Node Type"] == "CTE Scan" and outer.get("CTE Name") in SINGLE_ROWS
        if not single and (inner["Node Type"] in WHOLE_SCANS or "Join Filter" in node):
            yield f"{inner['Node Type']} on {inner.get('Alias', '?')}"
    for child in children:
        yield from quadratic_loops(child)


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of the plan, this one first."""
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def scans(node: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every scan in the plan: its kind and the table it reads."""
    return ((n["Node Type"], n["Relation Name"]) for n in nodes(node) if "Relation Name" in n)


def _through(node: dict[str, Any]) -> dict[str, Any]:
    while node["Node Type"] in PASS_THROUGH:
        node = node["Plans"][0]
    return node


# Tables of a size whose statistics make the planner look rows up by key, as in service.
ROWS = 20_000
RECEIPTS = f"""
INSERT INTO receipts (id, key_id, secret_shortkey, custid, kind, state, secret_ttl,
                      receipt_ttl, has_passphrase, value_claimable, expires_at)
SELECT sha256(int8send(-k)), 1, 'abcdef', 'anon', 'conceal', 'new', 3600, 7200, false,
       false, now() + interval '2 hours'
  FROM generate_series(1, {ROWS}) k
"""  # noqa: S608  # constants only
SECRETS = f"""
INSERT INTO secrets (id, receipt_id, key_id, ciphertext, value_bytes, expires_at)
SELECT sha256(int8send(k)), sha256(int8send(-k)), 1, '\\x00', 1, now() + interval '1 hour'
  FROM generate_series(1, {ROWS}) k
"""  # noqa: S608  # constants only


@pytest.mark.parametrize(
    "statement",
    [PURGE_EXPIRED, PURGE_SECRETS, PURGE_RECEIPTS],
    ids=["batch", "fallback", "receipts"],
)
async def test_a_purge_has_no_loop_over_its_whole_batch(
    db: asyncpg.Connection, statement: str
) -> None:
    await db.execute(RECEIPTS)
    await db.execute(SECRETS)
    await db.execute("ANALYZE receipts, secrets, passphrase_attempts, passphrase_lockouts")
    plan = await generic_plan(db, statement)
    assert list(quadratic_loops(plan)) == []
    assert ("Seq Scan", "secrets") not in set(scans(plan))
    assert ("Seq Scan", "receipts") not in set(scans(plan))


async def test_the_batch_finds_its_rows_where_the_read_saw_them(db: asyncpg.Connection) -> None:
    """The shape the test above relies on: the batch's rows looked up by ctid, and the
    receipts not touched at all (they read as expired once their secret is gone)."""
    await db.execute(RECEIPTS)
    await db.execute(SECRETS)
    await db.execute("ANALYZE receipts, secrets")
    plan = await generic_plan(db, PURGE_EXPIRED)
    found = set(scans(plan))
    assert ("Tid Scan", "secrets") in found
    assert not {table for _, table in found} & {"receipts"}
    # Not through the expiry index: that reads every expired row, the whole backlog, and
    # the statistics (none expired here) make it look cheap.
    assert "ix_secrets_expires_at" not in {node.get("Index Name") for node in nodes(plan)}


# A guessing campaign's worth of failed attempts, spread over the secrets.
ATTEMPTS = f"""
INSERT INTO passphrase_attempts (pending, secret_id, client_ref)
SELECT false, sha256(int8send(k % {ROWS} + 1)), sha256(int8send(k))
  FROM generate_series(1, {ROWS}) k
"""  # noqa: S608  # constants only


async def test_a_purge_deletes_guesses_by_key_when_there_are_many(
    db: asyncpg.Connection,
) -> None:
    await db.execute(RECEIPTS)
    await db.execute(SECRETS)
    await db.execute(ATTEMPTS)
    await db.execute("ANALYZE receipts, secrets, passphrase_attempts")
    found = set(scans(await generic_plan(db, PURGE_EXPIRED)))
    assert ("Seq Scan", "passphrase_attempts") not in found
    read = {kind for kind, table in found if table == "passphrase_attempts"} - {"ModifyTable"}
    assert read <= {"Index Scan", "Bitmap Heap Scan"}


def test_the_check_finds_such_a_loop() -> None:
    def scan(kind: str, alias: str) -> dict[str, Any]:
        return {"Node Type": kind, "Alias": alias, "CTE Name": alias}

    def loop(outer: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
        sides = [
            {**outer, "Parent Relationship": "Outer"},
            {**inner, "Parent Relationship": "Inner"},
        ]
        return {"Node Type": "Nested Loop", "Plans": sides}

    materialized = {"Node Type": "Materialize", "Plans": [scan("CTE Scan", "input")]}
    filtered = {**loop(scan("CTE Scan", "gone"), scan("Index Scan", "x")), "Join Filter": "..."}
    plans = [
        loop(scan("CTE Scan", "gone"), materialized),  # found
        filtered,  # found
        loop(scan("CTE Scan", "gone"), scan("Index Scan", "r")),
        loop(scan("CTE Scan", "head"), scan("Function Scan", "e")),
    ]
    found = list(quadratic_loops({"Node Type": "Result", "Plans": plans}))
    assert found == ["CTE Scan on input", "Index Scan on x"]
