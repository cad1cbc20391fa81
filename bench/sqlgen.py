"""pgbench scripts made from the service's own statements (app/store/), so the SQL
ceiling can never drift from what a conceal and a reveal really run: each `$n` parameter
becomes a SQL expression of pgbench variables, and nothing else in the text changes.

What stands in for what the service computes in Python: ids are sha256 of a per-
transaction number (as bench/fill.py makes them), the chain hash is a hash of it too,
and the audit seq is read from the head by a subquery inside the same statement (the
service passes it from memory). Each pgbench client writes chain `client_id % 64`, so up
to 64 clients never meet on a head; above that, a client whose head moved meanwhile
fails as the service's write would and is retried (--max-tries), as the service does.
"""

from __future__ import annotations

import re

from app.core.audit import PARTITIONS
from app.store import batched, secrets
from app.store.audit import AUDITED_PARAMS, BATCH_PARAMS
from app.store.ratelimits import HIT, HITS


def conceal() -> str:
    count = {1: ":client_ref::bytea", 2: "'create_secret'", 3: ":window::int"}
    work = {
        1: "sha256(int8send(:r::bigint))",
        2: "sha256(int8send(-:r::bigint))",
        3: "1",
        4: ":ciphertext::bytea",
        5: "NULL::bytea",
        6: "64",
        7: ":share_sealed::bytea",
        8: "'abcdef'",
        9: "'anon'",
        10: "'conceal'",
        11: ":ttl::int",
        12: "false",
        13: "NULL::text",
        14: "NULL::text",
        15: "NULL::bytea",
    }
    audit = _audit("secret.created", "sha256(int8send(-:r::bigint))", "'conceal'", ":r")
    return "\n".join(
        [
            "-- Made by bench/sqlgen.py from app/store/ratelimits.py HIT and",
            "-- app/store/secrets.py INSERT_PAIR.",
            r"\set r random(1, 9000000000000000000)",
            rf"\set part :client_id % {PARTITIONS}",
            _bind(HIT, count, {}).strip() + ";",
            _bind(secrets.INSERT_PAIR, work, audit).strip() + ";",
        ]
    )


def reveal() -> str:
    """Each client consumes its own pre-made secrets (bench/fill.py), once each."""
    key = "sha256(int8send(:k::bigint))"
    peek = {1: key, 2: ":client_ref::bytea", 3: "'show_secret'", 4: ":window::int"}
    consume = {1: key, 2: "'received'"}
    audit = _audit("secret.revealed", "sha256(int8send(-:k::bigint))", "NULL::text", ":k")
    return "\n".join(
        [
            "-- Made by bench/sqlgen.py from app/store/secrets.py PEEK_COUNTED and CONSUME.",
            r"\set n :n + 1",
            r"\set k :base + :client_id * 10000000 + :n",
            rf"\set part :client_id % {PARTITIONS}",
            _bind(secrets.PEEK_COUNTED, peek, {}).strip() + ";",
            _bind(secrets.CONSUME, consume, audit).strip() + ";",
        ]
    )


def conceal_batched(batch: int) -> str:
    """A batch of `batch` conceals as the service sends it under load (group commit): the
    counts in one statement (HITS), the pairs and their events in another (INSERT_PAIRS).
    Arrays stand in for the service's: `_many` repeats a value, `_each` varies one by g."""
    ids = "sha256(int8send(:r::bigint * 64 + g))"
    receipts = "sha256(int8send(-(:r::bigint * 64 + g)))"
    count = {
        1: _many(":client_ref::bytea", batch),
        2: _many("'create_secret'::text", batch),
        3: _many(":window::int", batch),
    }
    work = {
        1: _each(ids, batch),
        2: _each(receipts, batch),
        3: _many("1", batch),
        4: _many(":ciphertext::bytea", batch),
        5: _many("NULL::bytea", batch),
        6: _many("64", batch),
        7: _many(":share_sealed::bytea", batch),
        8: _many("'abcdef'::text", batch),
        9: _many("'anon'::text", batch),
        10: _many("'conceal'::text", batch),
        11: _many(":ttl::int", batch),
        12: _many("false", batch),
        13: _many("NULL::text", batch),
        14: _many("NULL::text", batch),
        15: _many("NULL::bytea", batch),
    }
    audit = _batch_audit("secret.created", receipts, "'conceal'::text", batch)
    return "\n".join(
        [
            "-- Made by bench/sqlgen.py from app/store/ratelimits.py HITS and",
            f"-- app/store/batched.py INSERT_PAIRS, {batch} conceals per transaction.",
            r"\set r random(1, 100000000000000)",
            rf"\set part :client_id % {PARTITIONS}",
            _bind(HITS, count, {}).strip() + ";",
            _bind(batched.INSERT_PAIRS, work, audit).strip() + ";",
        ]
    )


def reveal_batched(batch: int) -> str:
    """A batch of `batch` reveals (PEEKS_COUNTED, CONSUME_MANY); each client consumes
    its own pre-made secrets, `batch` per transaction."""
    key = "(:k0::bigint + g)"
    ids, receipts = f"sha256(int8send({key}))", f"sha256(int8send(-{key}))"
    peek = {
        1: _each(ids, batch),
        2: _many(":client_ref::bytea", batch),
        3: _many("'show_secret'::text", batch),
        4: _many(":window::int", batch),
    }
    consume = {1: _each(ids, batch), 2: _many("'received'::text", batch)}
    audit = _batch_audit("secret.revealed", receipts, "NULL::text", batch)
    return "\n".join(
        [
            "-- Made by bench/sqlgen.py from app/store/secrets.py PEEKS_COUNTED and",
            f"-- app/store/batched.py CONSUME_MANY, {batch} reveals per transaction.",
            r"\set n :n + 1",
            rf"\set k0 :base + :client_id * 10000000 + (:n - 1) * {batch}",
            r"\set r random(1, 100000000000000)",
            rf"\set part :client_id % {PARTITIONS}",
            _bind(secrets.PEEKS_COUNTED, peek, {}).strip() + ";",
            _bind(batched.CONSUME_MANY, consume, audit).strip() + ";",
        ]
    )


def _many(value: str, batch: int) -> str:
    return f"array_fill({value}, ARRAY[{batch}])"


def _each(value: str, batch: int) -> str:
    return f"ARRAY(SELECT {value} FROM generate_series(1, {batch}) g ORDER BY g)"  # noqa: S608


def _batch_audit(event: str, receipt_refs: str, detail: str, batch: int) -> dict[str, str]:
    """audited_batch()'s parameters: the head's scalars, then an array per row field."""
    head = "FROM audit_heads h WHERE h.part = :part::smallint"
    rows = f"FROM audit_heads h, generate_series(1, {batch}) g WHERE h.part = :part::smallint"
    values = {
        "part": ":part::smallint",
        "from_seq": f"(SELECT h.seq {head})",
        "previous": f"(SELECT h.chain_hash {head})",
        "to_seq": f"(SELECT h.seq + {batch} {head})",
        "to_hash": "sha256(int8send(:r::bigint))",
        "at": "now()",
        "seq": f"ARRAY(SELECT h.seq + g {rows} ORDER BY g)",
        "event": _many(f"'{event}'::text", batch),
        "outcome": _many("'success'::text", batch),
        "actor": _many("'anonymous'::text", batch),
        "client_ip": _many("'127.0.0.1'::text", batch),
        "user_agent": _many("'wrk'::text", batch),
        "request_id": _each("md5((:r::bigint * 64 + g)::text)", batch),
        "receipt_ref": _each(receipt_refs, batch),
        "detail": _many(detail, batch),
        "chain_hash": _each("sha256(int8send(:r::bigint * 64 + g + 1))", batch),
    }
    return {name: values[name] for name in BATCH_PARAMS}


def _audit(event: str, receipt_ref: str, detail: str, number: str) -> dict[str, str]:
    values = {
        "part": ":part::smallint",
        "seq": "(SELECT h.seq + 1 FROM audit_heads h WHERE h.part = :part::smallint)",
        "at": "now()",
        "event": f"'{event}'",
        "outcome": "'success'",
        "actor": "'anonymous'",
        "client_ip": "'127.0.0.1'",
        "user_agent": "'wrk'",
        "request_id": f"md5({number}::bigint::text)",
        "receipt_ref": receipt_ref,
        "detail": detail,
        "chain_hash": f"sha256(int8send({number}::bigint + 1))",
        "previous": "(SELECT h.chain_hash FROM audit_heads h WHERE h.part = :part::smallint)",
    }
    return {name: values[name] for name in AUDITED_PARAMS}


def _bind(sql: str, work: dict[int, str], audit: dict[str, str]) -> str:
    """`sql` with $1.. replaced: the work's parameters first, then the audit's in order."""
    values = dict(work)
    values.update({len(work) + 1 + i: value for i, value in enumerate(audit.values())})

    def value(match: re.Match[str]) -> str:
        return f"({values[int(match.group(1))]})"

    bound = re.sub(r"\$(\d+)", value, sql)
    if "$" in bound:
        raise ValueError("a parameter was left unbound")
    return bound
