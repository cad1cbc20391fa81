"""Secrets and their receipts: create, peek, consume (reveal or burn), read a receipt.

Plain SQL: every statement an auditor sees in pg_stat_statements is written here, or in
app/store/batched.py for the same changes many at once (group commit).
Expiry is enforced inside each statement (`expires_at > now()`, the database clock, as
store.live.alive writes it); the sweeper only reclaims rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.store.audit import Audited, audited, work_of
from app.store.db import Db, as_columns
from app.store.live import alive
from app.store.lockouts import guarded, guesses_dropped
from app.store.ratelimits import Hit, counted, counted_batch, hit_of

_HIT_COLUMNS = ("hits", "retry_after", "ord")


@dataclass(frozen=True)
class NewSecret:
    """Everything a create writes; ids are keyed hashes, values sealed."""

    secret_id: bytes
    receipt_id: bytes
    key_id: int
    ciphertext: bytes
    passphrase_salt: bytes | None
    value_bytes: int
    share_key_sealed: bytes
    secret_shortkey: str
    custid: str
    kind: str
    ttl: int
    value_claimable: bool
    share_domain: str | None
    recipients: str | None
    receipt_key_sealed: bytes | None


@dataclass(frozen=True)
class LiveSecret:
    id: bytes
    receipt_id: bytes
    key_id: int
    ciphertext: bytes
    passphrase_salt: bytes | None
    value_bytes: int
    ttl: int
    created: datetime
    expires_at: datetime
    custid: str


@dataclass(frozen=True)
class Receipt:
    id: bytes
    key_id: int
    share_key_sealed: bytes | None
    secret_shortkey: str
    custid: str
    kind: str
    state: str
    secret_ttl: int
    receipt_ttl: int
    has_passphrase: bool
    share_domain: str | None
    recipients: str | None
    value_claimable: bool
    created: datetime
    updated: datetime
    received: datetime | None
    burned: datetime | None
    expired: datetime | None
    expires_at: datetime
    secret_id: bytes | None  # set while the secret is live


_RECEIPT = """
receipt AS (
    INSERT INTO receipts (id, key_id, share_key_sealed, secret_shortkey, custid, kind, state,
                          secret_ttl, receipt_ttl, has_passphrase, value_claimable,
                          share_domain, recipients, receipt_key_sealed, expires_at)
    VALUES ($2, $3, $7, $8, $9, $10, 'new', $11::int, 2 * $11::int, $5::bytea IS NOT NULL,
            $12, $13, $14, $15, now() + make_interval(secs => 2 * $11::int))
    RETURNING id
)"""
_LIVE_ROW = """
work AS (
    INSERT INTO secrets (id, receipt_id, key_id, ciphertext, passphrase_salt, value_bytes,
                         expires_at)
    SELECT $1, receipt.id, $3, $4, $5, $6, now() + make_interval(secs => $11::int) FROM receipt
    RETURNING created_at
)"""
# One statement with its audit row: the pair and the event commit together, in one
# round trip.
INSERT_PAIR = audited(f"{_RECEIPT},{_LIVE_ROW}", 15)
# The same with the recipient's mail in the outbox ($16 its event id, $17 the key id, $18
# the sealed address and link): the mail exists exactly when the secret does.
INSERT_PAIR_WITH_MAIL = audited(
    f"""{_RECEIPT},
mail AS (
    INSERT INTO notifications (event_id, channel, event, receipt_ref, custid, key_id,
                               payload_sealed)
    SELECT $16, 'email', 'secret.created', receipt.id, $9, $17, $18 FROM receipt
),{_LIVE_ROW}""",  # noqa: S608  # constants only
    18,
)


@dataclass(frozen=True)
class RecipientMail:
    """The outbox row of the recipient's mail: its payload already sealed."""

    event_id: uuid.UUID
    key_id: int
    payload_sealed: bytes


async def insert_pair(run: Audited, new: NewSecret, mail: RecipientMail | None = None) -> datetime:
    """Write the secret and its receipt (and the recipient's mail); returns the creation
    time (database clock)."""
    if mail is None:
        rows = await run(INSERT_PAIR, pair_args(new))
    else:
        mail_args = (mail.event_id, mail.key_id, mail.payload_sealed)
        rows = await run(INSERT_PAIR_WITH_MAIL, (*pair_args(new), *mail_args))
    created: datetime = rows[0]["created_at"]
    return created


def pair_args(new: NewSecret) -> tuple[object, ...]:
    """INSERT_PAIR's own parameters, $1 to $15."""
    return (
        new.secret_id,
        new.receipt_id,
        new.key_id,
        new.ciphertext,
        new.passphrase_salt,
        new.value_bytes,
        new.share_key_sealed,
        new.secret_shortkey,
        new.custid,
        new.kind,
        new.ttl,
        new.value_claimable,
        new.share_domain,
        new.recipients,
        new.receipt_key_sealed,
    )


_LIVE = f"""
SELECT s.id, s.receipt_id, s.key_id, s.ciphertext, s.passphrase_salt, s.value_bytes,
       r.secret_ttl AS ttl, s.created_at AS created, s.expires_at, r.custid
  FROM secrets s JOIN receipts r ON r.id = s.receipt_id
 WHERE {alive("s")} AND {{}}
"""  # noqa: S608  # constants only
PEEK = _LIVE.format("s.id = $1")
PEEK_BY_RECEIPT = _LIVE.format("s.receipt_id = $1")


async def peek_secret(db: Db, secret_id: bytes) -> LiveSecret | None:
    """Read a live secret without locking it (GET, and before a passphrase check)."""
    row = await db.fetchrow(PEEK, secret_id)
    return None if row is None else LiveSecret(**row)


# The reveal's first read and its rate-limit count, in one round trip.
PEEK_COUNTED = counted(PEEK, 1)


async def peek_counted(
    db: Db, secret_id: bytes, count: tuple[bytes, str, int]
) -> tuple[Hit, LiveSecret | None]:
    """peek_secret, and the request counted (ratelimits.hit's arguments in `count`)."""
    row = await db.fetchrow(PEEK_COUNTED, secret_id, *count)
    assert row is not None  # noqa: S101  # the count always yields its row
    return _counted_peek(row)


def _counted_peek(row: asyncpg.Record) -> tuple[Hit, LiveSecret | None]:
    live = None
    if row["id"] is not None:
        live = LiveSecret(**{k: v for k, v in row.items() if k not in _HIT_COLUMNS})
    return hit_of(row), live


# peek_counted for many requests at once (app/core/counts.Counts).
PEEKS_COUNTED = counted_batch(
    (("secret_id", "bytea"),),
    f"""SELECT counted.ord, counted.hits, counted.retry_after, found.*
  FROM counted
  LEFT JOIN ({_LIVE.format("s.id IN (SELECT secret_id FROM input)")}) found
         ON found.id = counted.secret_id
 ORDER BY counted.ord""",  # noqa: S608  # constants only
)


async def peeks_counted(
    db: Db, asked: Sequence[tuple[bytes, tuple[bytes, str, int]]]
) -> list[tuple[Hit, LiveSecret | None]]:
    """peek_counted for each (secret id, count) of `asked`, in one round trip."""
    columns = as_columns((secret_id, *count) for secret_id, count in asked)
    return [_counted_peek(row) for row in await db.fetch(PEEKS_COUNTED, *columns)]


async def peek_secret_of(db: Db, receipt_id: bytes) -> LiveSecret | None:
    row = await db.fetchrow(PEEK_BY_RECEIPT, receipt_id)
    return None if row is None else LiveSecret(**row)


# One statement, one round trip: lock the live row, delete it, close its receipt, and
# record it. A concurrent caller waits on the row lock; once the winner commits, its
# lock finds no live row, so it deletes, closes and records nothing and gets no row.
CONSUME = audited(
    f"""
locked AS (
    SELECT s.id FROM secrets s WHERE s.id = $1 AND {alive("s")} FOR UPDATE
), gone AS (
    DELETE FROM secrets s USING locked WHERE s.id = locked.id
    RETURNING s.id, s.receipt_id, {guarded("s")}
), {guesses_dropped("gone")}, work AS (
    UPDATE receipts r
       SET state = $2, share_key_sealed = NULL, updated_at = now(),
           received_at = CASE WHEN $2 = 'received' THEN now() END,
           burned_at = CASE WHEN $2 = 'burned' THEN now() END
      FROM gone
     WHERE r.id = gone.receipt_id
    RETURNING r.id
)""",  # noqa: S608  # constants only
    2,
)


async def consume_secret(run: Audited, secret_id: bytes, final_state: str) -> bool:
    """Delete the live secret and close its receipt, with its audit event; False if
    someone got there first (then nothing is recorded)."""
    return bool(await run(CONSUME, (secret_id, final_state)))


# A receipt still 'new' whose secret is no longer live has expired (or, if its time
# was not up, been removed some other way): derived here so no reader waits for the sweeper.
RECEIPT_VIEW = f"""
SELECT r.id, r.key_id, r.share_key_sealed, r.secret_shortkey, r.custid, r.kind,
       CASE WHEN r.state = 'new' AND s.id IS NULL THEN
            CASE WHEN r.created_at + make_interval(secs => r.secret_ttl) <= now()
                 THEN 'expired' ELSE 'orphaned' END
            ELSE r.state END AS state,
       r.secret_ttl, r.receipt_ttl, r.has_passphrase, r.share_domain, r.recipients,
       r.value_claimable, r.created_at AS created, r.updated_at AS updated,
       r.received_at AS received, r.burned_at AS burned,
       COALESCE(r.expired_at, CASE WHEN r.state = 'new' AND s.id IS NULL
                              THEN r.created_at + make_interval(secs => r.secret_ttl) END)
           AS expired,
       r.expires_at, s.id AS secret_id{{extra}}
  FROM receipts r
  LEFT JOIN secrets s ON s.receipt_id = r.id AND {alive("s")}
 WHERE {alive("r")} AND {{where}}
"""  # noqa: S608  # constants only
GET_RECEIPT = RECEIPT_VIEW.format(extra="", where="r.id = $1")
# An account's receipts of the last `$2` days, newest change first (upstream's listing).
RECENT = (
    RECEIPT_VIEW.format(
        extra=", r.receipt_key_sealed",
        where="r.custid = $1 AND r.created_at > now() - make_interval(days => $2::int)",
    )
    + " ORDER BY r.updated_at DESC LIMIT $3"
)


# The sender reading a receipt is recorded; the read and its event are one statement.
GET_RECEIPT_AUDITED = audited(f"work AS ({GET_RECEIPT})", 1)


async def get_receipt(db: Db, receipt_id: bytes) -> Receipt | None:
    row = await db.fetchrow(GET_RECEIPT, receipt_id)
    return None if row is None else Receipt(**row)


async def read_receipt(run: Audited, receipt_id: bytes) -> Receipt | None:
    """get_receipt, recorded (only if there is a receipt to read)."""
    rows = await run(GET_RECEIPT_AUDITED, (receipt_id,))
    return Receipt(**work_of(rows[0])) if rows else None


async def recent_receipts(
    db: Db, custid: str, days: int, limit: int
) -> list[tuple[Receipt, bytes | None]]:
    """Each receipt with its sealed key (the listing must show keys; ids are hashes)."""
    rows = await db.fetch(RECENT, custid, days, limit)
    return [
        (
            Receipt(**{k: v for k, v in row.items() if k != "receipt_key_sealed"}),
            row["receipt_key_sealed"],
        )
        for row in rows
    ]


# The generated value is shown once: whoever flips the flag first sees it.
CLAIM_VALUE = """
UPDATE receipts SET value_claimable = false
 WHERE id = $1 AND value_claimable AND created_at > now() - make_interval(secs => $2)
RETURNING id
"""


async def claim_generated_value(db: Db, receipt_id: bytes, window_seconds: int) -> bool:
    return await db.fetchrow(CLAIM_VALUE, receipt_id, window_seconds) is not None
