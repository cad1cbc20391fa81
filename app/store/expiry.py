"""Reclaiming expired rows in batches, safe with one sweeper per pod."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from app.store.audit import audited_batch
from app.store.db import Db
from app.store.lockouts import guarded, guesses_dropped

# SKIP LOCKED: rows another pod's sweeper (or a reveal in flight) holds are left to
# it, so many sweepers never wait on each other or hand out two outcomes for one row.
# `$2`: where the previous batch of this pass ended. The index on expires_at keeps the
# entries of rows deleted moments ago until a vacuum; starting every batch from the
# oldest, a pass through a backlog re-read all of them each time (14,000 rows/s at
# batches of 500, against 20,000 from the cursor). Rows a batch skipped (SKIP LOCKED)
# lie behind the cursor: the next pass, which starts from the beginning, takes them.
#
# The receipts are left as they are: a receipt whose secret is gone reads as expired
# (secrets.RECEIPT_VIEW derives it, so no reader waits for the sweeper), and its sealed
# share key, which only the receipt's key opens, leads to nothing once the secret is gone;
# it goes with the receipt at the end of the receipt's life. Closing each receipt here
# was a third of PostgreSQL's work a row and half its WAL (bench/FINDINGS.md, sixth round).
# A secret is there only while its receipt is open (a reveal or burn closes the receipt
# in the statement that deletes the secret), so each secret removed here is one expiry,
# and its event is recorded in the same statement or transaction.
PURGE_SECRETS = f"""
WITH doomed AS (
    SELECT id FROM secrets WHERE expires_at <= now() AND expires_at >= $2
     ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
),
gone AS (
    DELETE FROM secrets s USING doomed WHERE s.id = doomed.id
    RETURNING s.id, s.receipt_id, s.expires_at, {guarded("s")}
),
{guesses_dropped("gone")}
SELECT receipt_id, expires_at FROM gone
"""  # noqa: S608  # constants only

# The fast path, two round trips and no transaction around them (app/expiry.py): read a
# batch of expired secrets, then purge exactly those and append their events in one
# audited statement, chained beforehand (store.audit.audited_batch), which commits only
# if every one of them was purged. Another sweeper having taken one aborts it whole, and
# the batch goes the transactional way above. Expired rows are never revealed or burned
# (every query checks expires_at), so between the two statements only another sweeper
# can take them.
#
# The statement takes no row lock before it deletes (FOR UPDATE SKIP LOCKED did, as the
# transactional way does): the lock was a write and a WAL record a row, 11 % of
# PostgreSQL's time in a sweep (bench/FINDINGS.md, fifteenth round). So a row someone
# holds is waited for, not skipped: another sweeper's statement, milliseconds; a reveal
# that locked the row just before it expired, as long as that reveal. If the holder
# removed the row, the delete finds it gone and the guard sends the batch the
# transactional way, which skips what is held; a hold longer than lock_timeout (1 s)
# does the same. Two sweepers cannot deadlock here: a delete by a list of ctids takes
# them in ctid order.
#
# Rows are found again by where the read saw them (ctid), checked against their receipt
# (unique to a secret, and what the row's event names): a slot reused since then fails
# the check, and the batch goes the transactional way. That saves two primary-key lookups
# a row, and relies on secrets never being updated (a row keeps its place for life); an
# update would send every batch it met the slow way.
# No step joins two sets: the plan PostgreSQL caches after five runs guesses ten rows
# for the batch, and on that guess it had joined `gone` to `input` by reading all of
# `input` for each row, 4,000,000 comparisons a batch of 2,000 (tests/test_sweeper_plan.py;
# bench/FINDINGS.md, fifth round); and the first five runs on a connection are planned
# for the batch's true size, on which a table of 100,000 was read and hashed whole to
# find 2,000 rows. So the rows are checked in a subquery per element of the batch, which
# PostgreSQL cannot flatten into a join (OFFSET 0; FOR UPDATE did it when the statement
# locked), and deleted by their ctids as one array. Neither asks whether the row has
# expired: the read saw it expired, a secret is never updated, and a slot reused since
# holds another receipt. Asked, it let PostgreSQL read the rows through the expiry index,
# every expired row for each one looked for, when its statistics guessed few. A batch
# of 2,000 on a table of 100,000 took 17 to 28 ms, against 40 to 42 with the delete
# joined to the rows found (EXPLAIN ANALYZE, sixth round). `work` gives each change's
# secret id as its `ord`: the guard counts distinct ones, one per secret purged. The
# statement answers with the guard's row alone (per_change=False): nobody reads which.
#
# The read comes back as one row, each column a text of words joined by spaces (ctids as
# PostgreSQL writes them, receipts in hex), and the purge takes them back so (an
# audited_batch(alike=True) statement's columns are packed): the driver then decodes and
# encodes a string a column, not an element a row (store.audit). The words are
# aggregated in one pass, so they line up.
EXPIRED = """
SELECT string_agg(ctid::text, ' ') AS tids, string_agg(encode(receipt_id, 'hex'), ' ') AS refs,
       max(expires_at) AS upto
  FROM (SELECT ctid, receipt_id, expires_at FROM secrets
         WHERE expires_at <= now() AND expires_at >= $2 ORDER BY expires_at LIMIT $1) batch
"""

PURGE_EXPIRED = audited_batch(
    f"""
found AS (
    SELECT s.ctid FROM input, LATERAL (
        SELECT ctid FROM secrets
         WHERE ctid = input.tid::tid AND receipt_id = decode(input.receipt_ref, 'hex')
        OFFSET 0
    ) s
), gone AS (
    DELETE FROM secrets s WHERE ctid = ANY(ARRAY(SELECT ctid FROM found))
    RETURNING id, {guarded("s")}
), {guesses_dropped("gone")}, work AS (SELECT id AS ord FROM gone)""",  # noqa: S608  # constants only
    (("tid", "tid"), ("receipt_ref", "bytea")),
    alike=True,
    per_change=False,
)

# A receipt whose secret is still there waits for it: deleting the receipt would take the
# secret with it (the cascade) and no expiry would be recorded. That happens only when a
# pass left an expired secret behind (another sweeper held it); the next pass takes both.
PURGE_RECEIPTS = """
WITH doomed AS (
    SELECT id FROM receipts r WHERE expires_at <= now() AND expires_at >= $2
       AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.receipt_id = r.id)
     ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
DELETE FROM receipts r USING doomed WHERE r.id = doomed.id RETURNING r.expires_at
"""

PURGE_LOCKOUTS = "DELETE FROM passphrase_lockouts WHERE locked_until <= now()"
# Guesses whose secret is gone. The statement that removes a secret deletes its guesses
# (guesses_dropped), but as its snapshot saw them: a guess committed while it waited for
# the secret's row outlives the secret, and only this finds it.
PURGE_ORPHAN_GUESSES = (
    """
DELETE FROM passphrase_attempts a
 WHERE NOT EXISTS (SELECT 1 FROM secrets s WHERE s.id = a.secret_id)
""",
    """
DELETE FROM passphrase_lockouts l
 WHERE NOT EXISTS (SELECT 1 FROM secrets s WHERE s.id = l.secret_id)
""",
)
# Rate windows last at most a day (OTS_RATE_WINDOW's ceiling), so older counters are dead.
PURGE_COUNTERS = "DELETE FROM rate_counters WHERE window_start < now() - interval '1 day'"


START = datetime(1970, 1, 1, tzinfo=UTC)  # before anything expires: a pass starts here


@dataclass(frozen=True)
class Purged:
    """What a sweep removed."""

    secrets: int
    receipts_deleted: int

    @property
    def receipts_expired(self) -> int:
        """Expiries recorded: one per secret removed (each secret's receipt was open)."""
        return self.secrets


async def purge_secrets(tx: Db, batch: int, since: datetime) -> tuple[list[bytes], datetime]:
    """One batch of expired secrets from `since`: the receipts of those that went, and
    where the next batch starts."""
    rows = await tx.fetch(PURGE_SECRETS, batch, since)
    expired = [row["receipt_id"] for row in rows]
    return expired, max((row["expires_at"] for row in rows), default=since)


@dataclass(frozen=True)
class Expired:
    """A batch of expired secrets as read, before anything is purged."""

    tids: list[str]  # where each was, as PostgreSQL writes a tid: "(block,item)"
    receipt_refs: list[str]  # each one's receipt, in hex
    upto: datetime  # where the next read starts

    def batches(self, size: int) -> Iterator[Expired]:
        """The rows in order, `size` at a time."""
        for at in range(0, len(self.tids), size):
            rows = slice(at, at + size)
            yield Expired(self.tids[rows], self.receipt_refs[rows], self.upto)

    def columns(self) -> list[str]:
        """PURGE_EXPIRED's own parameters, packed."""
        return [" ".join(self.tids), " ".join(self.receipt_refs)]


async def expired(db: Db, batch: int, since: datetime) -> Expired:
    row = await db.fetchrow(EXPIRED, batch, since)
    assert row is not None  # noqa: S101  # an aggregate always gives a row
    if row["upto"] is None:  # nothing expired from `since`
        return Expired([], [], since)
    return Expired(row["tids"].split(" "), row["refs"].split(" "), row["upto"])


async def purge_receipts(tx: Db, batch: int, since: datetime) -> tuple[int, datetime]:
    """One batch of receipts past their life from `since`: how many, and where next."""
    rows = await tx.fetch(PURGE_RECEIPTS, batch, since)
    return len(rows), max((row["expires_at"] for row in rows), default=since)


async def purge_stale(db: Db) -> None:
    """Lapsed passphrase lockouts, dead rate counters and guesses left without their
    secret: small tables, once a pass."""
    await db.execute(PURGE_LOCKOUTS)
    await db.execute(PURGE_COUNTERS)
    for statement in PURGE_ORPHAN_GUESSES:
        await db.execute(statement)
