"""The schema, as SQLAlchemy Core tables: the one source alembic migrations are checked against."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

RECEIPT_STATES = ("new", "viewed", "received", "burned", "expired", "orphaned")

# The sender's receipt ("metadata" upstream). It outlives its secret (2 x ttl) so the
# sender can see what became of it. `id` is a keyed hash of the receipt key.
receipts = Table(
    "receipts",
    metadata,
    Column("id", LargeBinary, primary_key=True),
    Column("key_id", SmallInteger, nullable=False),
    # The share key, sealed under a key derived from the receipt key; NULL once the
    # secret is gone, so a consumed secret's link is unrecoverable.
    Column("share_key_sealed", LargeBinary),
    Column("secret_shortkey", Text, nullable=False),
    Column("custid", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("secret_ttl", Integer, nullable=False),
    Column("receipt_ttl", Integer, nullable=False),
    Column("has_passphrase", Boolean, nullable=False),
    # A generated value may be shown to its creator once, shortly after creation.
    Column("value_claimable", Boolean, nullable=False),
    Column("share_domain", Text),
    # Obscured addresses ("to*****m@e*****.com"), never the address itself.
    Column("recipients", Text),
    # For account-owned receipts only: the receipt key sealed under the master key, so
    # /private/recent can list the account's receipts (their ids are one-way hashes).
    Column("receipt_key_sealed", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("received_at", DateTime(timezone=True)),
    Column("burned_at", DateTime(timezone=True)),
    Column("expired_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"state IN {RECEIPT_STATES!r}", name="state"),
    CheckConstraint("kind IN ('conceal', 'generate')", name="kind"),
    Index(None, "expires_at"),
    Index(None, "custid", "created_at"),
    # Room on each page for the update that closes a receipt (migration 0008).
    postgresql_with={"fillfactor": 70},
)

# A live secret. The row is deleted when the secret is revealed, burned or expired:
# only live secrets exist here. `id` is a keyed hash of the share (link) key.
secrets = Table(
    "secrets",
    metadata,
    Column("id", LargeBinary, primary_key=True),
    Column(
        "receipt_id",
        LargeBinary,
        ForeignKey("receipts.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("key_id", SmallInteger, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    # argon2id salt; present exactly when the secret has a passphrase.
    Column("passphrase_salt", LargeBinary),
    Column("value_bytes", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index(None, "expires_at"),
)

# Failed passphrase attempts, per secret and client (a keyed hash of the address).
passphrase_attempts = Table(
    "passphrase_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # Reserved before the passphrase is checked; a failure settles it (pending false),
    # a success deletes it. Pending rows count against the limit, so concurrent
    # guesses can never exceed it.
    Column("pending", Boolean, nullable=False, server_default="true"),
    # No foreign key: the statements that remove a secret delete its guesses too
    # (store.lockouts.guesses_dropped); a cascade cost two queries per removed secret.
    Column("secret_id", LargeBinary, nullable=False),
    Column("client_ref", LargeBinary, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "secret_id", "failed_at"),
)

# An active lock: for one client of a secret, or (client_ref NULL) for everyone.
passphrase_lockouts = Table(
    "passphrase_lockouts",
    metadata,
    Column("secret_id", LargeBinary, nullable=False),  # no foreign key: as above
    Column("client_ref", LargeBinary),
    Column("locked_until", DateTime(timezone=True), nullable=False),
    Index(None, "secret_id", "locked_until"),
)

# Accounts. The API token itself is never stored: only a keyed hash of it.
customers = Table(
    "customers",
    metadata,
    Column("custid", Text, primary_key=True),
    Column("plan", Text, nullable=False),
    Column("token_digest", LargeBinary, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="false"),
    # Admins may read the audit trail over the API.
    Column("admin", Boolean, nullable=False, server_default="false"),
    # Notifications (migration 0006): e-mail the account when its secrets are revealed or
    # expire; POST its events to a webhook, signed with a secret sealed under a master key.
    Column("notify_sender", Boolean, nullable=False, server_default="false"),
    Column("webhook_url", Text),
    Column("webhook_key_id", SmallInteger),
    Column("webhook_secret_sealed", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("plan IN ('basic', 'identity')", name="plan"),
    CheckConstraint("custid = lower(custid)", name="custid_lower"),
    # The accounts that want notifications: the outbox trigger stops at once when there
    # are none (migration 0010).
    Index(
        "ix_customers_notified",
        "custid",
        postgresql_where=text("NOT disabled AND (notify_sender OR webhook_url IS NOT NULL)"),
    ),
)

# Request counters per client (a keyed hash of the address, or the account) and event,
# in fixed windows; one upsert per request, shared by every pod. UNLOGGED (migration
# 0004): the upsert's commit then waits for no WAL flush; a crash resets the counters.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("client_ref", LargeBinary, primary_key=True),
    Column("event", Text, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("hits", Integer, nullable=False),
    Index(None, "window_start"),
    prefixes=["UNLOGGED"],
)

# The audit trail: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE), one row
# per event, written in the transaction of the change it records. Rows are hash-chained
# per partition (`part`, `seq`): see app/core/audit.py for why.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("part", SmallInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("client_ip", Text),
    Column("user_agent", Text),
    Column("request_id", Text),
    # The receipt's row id (a keyed hash of its key), never a link key.
    Column("receipt_ref", LargeBinary),
    Column("detail", Text),
    # sha256(previous row's chain_hash in this partition || canonical form of this row)
    Column("chain_hash", LargeBinary, nullable=False),
    Index(None, "at"),
    # No index on (part, seq): a chain's writer alone sets its seqs, holding its head
    # (store.audit), and one was a third of an audited write's index work (migration 0012).
    # No index on receipt_ref: nothing reads by it, and it cost every audited write an
    # insert at a random leaf (migration 0011).
)

# The head of each partition's chain: the last seq and hash. Locking a head row
# serialises the writers of that partition only.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("part", SmallInteger, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary, nullable=False),
    # After a prune: rows up to `pruned_seq` are gone and `pruned_hash` is the chain hash
    # of row `pruned_seq`, where verification resumes.
    Column("pruned_seq", BigInteger, nullable=False, server_default="0"),
    Column("pruned_hash", LargeBinary),
)

NOTIFY_CHANNELS = ("email", "webhook")
NOTIFY_EVENTS = ("secret.created", "secret.revealed", "secret.burned", "secret.expired")
NOTIFY_STATES = ("pending", "delivered", "dead")

# The notification outbox: rows are inserted in the transaction of the event (by the
# trigger on audit_events, or for the recipient's mail by the create itself) and
# delivered afterwards, at least once, by a worker in every process (app/notify).
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # Sent to receivers, the same on every attempt, so they can drop duplicates.
    Column("event_id", Uuid, nullable=False),
    Column("channel", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("receipt_ref", LargeBinary, nullable=False),
    Column("secret_shortkey", Text),
    Column("custid", Text, nullable=False),
    # The recipient's mail only: address and share link, sealed under master key `key_id`;
    # cleared once the row is delivered or dead.
    Column("key_id", SmallInteger),
    Column("payload_sealed", LargeBinary),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A worker's claim: until then no other worker takes the row; a crashed worker's
    # claim simply runs out.
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    CheckConstraint(f"channel IN {NOTIFY_CHANNELS!r}", name="channel"),
    CheckConstraint(f"event IN {NOTIFY_EVENTS!r}", name="event"),
    CheckConstraint(f"state IN {NOTIFY_STATES!r}", name="state"),
    UniqueConstraint("event_id", "channel", name="uq_notifications_event_id_channel"),
    Index("ix_notifications_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    Index(None, "created_at"),
)
