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
from app.store import secrets
from app.store.audit import AUDITED_PARAMS
from app.store.ratelimits import HIT


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
