"""Rows made in bulk with SQL: real rows of the schema (a receipt and its secret, sealed
values of the service's lengths), for pgbench's reveals, the size test and the sweeper.

Row k gets ids sha256(int8send(k)) (secret) and sha256(int8send(-k)) (receipt), which is
how the pgbench reveal script (bench/sqlgen.py) finds them. Nobody can open these values:
no link key exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bench.pg import sql

# Filled in with numbers and the fixed fragments below only, never with input.
RECEIPTS = """
INSERT INTO receipts (id, key_id, share_key_sealed, secret_shortkey, custid, kind, state,
                      secret_ttl, receipt_ttl, has_passphrase, value_claimable,
                      created_at, updated_at, expires_at)
SELECT sha256(int8send(-k)), 1, {sealed_90}, 'abcdef', 'anon', 'conceal', 'new',
       3600, 7200, false, false, now() - {age}, now() - {age}, now() - {age} + interval '2 hours'
  FROM {source}
"""
SECRETS = """
INSERT INTO secrets (id, receipt_id, key_id, ciphertext, value_bytes, created_at, expires_at)
SELECT sha256(int8send(k)), sha256(int8send(-k)), 1, {sealed_104}, 64,
       now() - {age}, now() - {age} + interval '1 hour'
  FROM {source}
"""
# 90 bytes: a 50-character link key sealed (24-byte nonce + 16-byte tag); 104: a 64-byte value.
SEALED = "substring(decode(repeat(md5(k::text), 7), 'hex') FROM 1 FOR {})"
PER_CLIENT = (
    "(SELECT {base}::bigint + c::bigint * 10000000 + n AS k"
    " FROM generate_series(0, {last_client}) c, generate_series(1, {each}) n) AS g"
)


def secrets(
    url: str, first: int, last: int, *, expired: bool = False, expiring_in: int | None = None
) -> None:
    """Secrets first..last with a one-hour TTL: live, or made 61 minutes ago (expired, but
    their receipts still live, as after a real expiry), or made so long ago that they
    expire `expiring_in` seconds after the fill began."""
    age = 61 * 60 if expired else 0 if expiring_in is None else 3600 - expiring_in
    _insert(url, f"generate_series({first}::bigint, {last}::bigint) AS k", age)


def per_client(url: str, base: int, clients: int, each: int) -> None:
    """`each` secrets for every pgbench client c: k = base + c * 10,000,000 + 1..each."""
    _insert(url, PER_CLIENT.format(base=base, last_client=clients - 1, each=each), age=0)


def settle(url: str) -> None:
    """What a bulk load leaves to do, done now: vacuum (visibility and hint bits, which the
    first readers would otherwise write, and autovacuum's pass over the new rows) and a
    checkpoint, so a measurement after a fill sees a table in its steady state."""
    sql(url, "VACUUM (ANALYZE) receipts, secrets", "CHECKPOINT")


@contextlib.contextmanager
def undone(url: str) -> Iterator[None]:
    """Every secret and receipt made inside the block is removed after it (their
    receipts' cascade), then the tables are vacuumed: what a run left behind goes, and the
    table is back to its filler. No checkpoint: the next run does not start on fresh
    full-page images."""
    mark = sql(url, "SELECT now()::text")[0][0]
    yield
    sql(
        url,
        f"DELETE FROM receipts WHERE created_at >= '{mark}'::timestamptz",  # noqa: S608  # the database's own clock
        "VACUUM (ANALYZE) receipts, secrets",
    )


def _insert(url: str, source: str, age: int) -> None:
    """`age`: how many seconds ago the rows were made (their TTL is an hour)."""
    values = {
        "source": source,
        "age": f"interval '{int(age)} seconds'",
        "sealed_90": SEALED.format(90),
        "sealed_104": SEALED.format(104),
    }
    sql(url, RECEIPTS.format(**values), SECRETS.format(**values), "ANALYZE receipts, secrets")
