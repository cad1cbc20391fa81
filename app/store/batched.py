"""The audited statements that group commit (app/core/batches.py) can run many at once.

Each takes the arrays of its single statement's parameters, one element per change (the
same parameters, in the same order, so a batch is its members' arguments transposed), and
returns the single statement's rows, each with the `ord` of the change it belongs to.
Every change in a batch must be made, or none is (store.audit.audited_batch): the
writer then makes them one by one with the single statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.store import secrets
from app.store.audit import EVENT_ONLY, audited_batch
from app.store.live import alive
from app.store.lockouts import guarded, guesses_dropped


@dataclass(frozen=True)
class Batched:
    name: str  # for the metrics
    sql: str


_PAIR_COLUMNS = (
    ("secret_id", "bytea"),
    ("receipt_id", "bytea"),
    ("key_id", "int"),
    ("ciphertext", "bytea"),
    ("passphrase_salt", "bytea"),
    ("value_bytes", "int"),
    ("share_key_sealed", "bytea"),
    ("secret_shortkey", "text"),
    ("custid", "text"),
    ("kind", "text"),
    ("ttl", "int"),
    ("value_claimable", "bool"),
    ("share_domain", "text"),
    ("recipients", "text"),
    ("receipt_key_sealed", "bytea"),
)
INSERT_PAIRS = audited_batch(
    """
receipt AS (
    INSERT INTO receipts (id, key_id, share_key_sealed, secret_shortkey, custid, kind, state,
                          secret_ttl, receipt_ttl, has_passphrase, value_claimable,
                          share_domain, recipients, receipt_key_sealed, expires_at)
    SELECT receipt_id, key_id, share_key_sealed, secret_shortkey, custid, kind, 'new', ttl,
           2 * ttl, passphrase_salt IS NOT NULL, value_claimable, share_domain, recipients,
           receipt_key_sealed, now() + make_interval(secs => 2 * ttl)
      FROM input
    RETURNING id
), secret AS (
    INSERT INTO secrets (id, receipt_id, key_id, ciphertext, passphrase_salt, value_bytes,
                         expires_at)
    SELECT input.secret_id, receipt.id, input.key_id, input.ciphertext,
           input.passphrase_salt, input.value_bytes, now() + make_interval(secs => input.ttl)
      FROM input JOIN receipt ON receipt.id = input.receipt_id
    RETURNING id, created_at
), work AS (
    SELECT input.ord, secret.created_at FROM secret JOIN input ON input.secret_id = secret.id
)""",
    _PAIR_COLUMNS,
)

# A batch never waits for a row another transaction holds (a consume in another pod, a
# burn, a receipt claimed): it skips the secret, falls short of a change and is made one
# by one, so only that member waits and no lock holds up the rest of the batch. A secret
# twice in a batch falls short the same way (its receipt is closed once, for one of the
# two): alone, the second consume finds nothing. `gone JOIN input` may become a nested
# loop over `input` under a generic plan (tests/test_sweeper_plan.py); a batch is at most
# core.gather.MAX_BATCH (64) members, so at most 4,096 pairs.
CONSUME_MANY = audited_batch(
    f"""
locked AS (
    SELECT s.id FROM secrets s JOIN receipts r ON r.id = s.receipt_id
     WHERE s.id IN (SELECT secret_id FROM input) AND {alive("s")}
     FOR UPDATE OF s, r SKIP LOCKED
), gone AS (
    DELETE FROM secrets s USING locked WHERE s.id = locked.id
    RETURNING s.id, s.receipt_id, {guarded("s")}
), {guesses_dropped("gone")}, work AS (
    UPDATE receipts r
       SET state = input.final_state, share_key_sealed = NULL, updated_at = now(),
           received_at = CASE WHEN input.final_state = 'received' THEN now() END,
           burned_at = CASE WHEN input.final_state = 'burned' THEN now() END
      FROM gone JOIN input ON input.secret_id = gone.id
     WHERE r.id = gone.receipt_id
    RETURNING input.ord, r.id
)""",  # noqa: S608  # constants only
    (("secret_id", "bytea"), ("final_state", "text")),
)

# The same receipt twice in a batch is read (and recorded) twice, as it would be alone.
GET_RECEIPTS_AUDITED = audited_batch(
    f"""
found AS ({secrets.RECEIPT_VIEW.format(extra="", where="r.id IN (SELECT receipt_id FROM input)")}),
work AS (SELECT input.ord, found.* FROM found JOIN input ON input.receipt_id = found.id)""",  # noqa: S608  # constants only
    (("receipt_id", "bytea"),),
)

# Events alone (reads worth recording), one per member of the batch.
EVENTS_ONLY = audited_batch("work AS (SELECT ord, true AS recorded FROM input)", ())

# Each single statement, and its batch.
BATCHED = {
    secrets.INSERT_PAIR: Batched("create", INSERT_PAIRS),
    secrets.CONSUME: Batched("consume", CONSUME_MANY),
    secrets.GET_RECEIPT_AUDITED: Batched("receipt_read", GET_RECEIPTS_AUDITED),
    EVENT_ONLY: Batched("event", EVENTS_ONLY),
}
