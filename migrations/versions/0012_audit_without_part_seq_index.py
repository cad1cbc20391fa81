"""audit_events: no unique index on (part, seq)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 06:00:00

Every audited write inserted an entry into three indexes: the primary key (id), `at`,
and the unique (part, seq). The third guarded nothing the writes do not already guard:
a row's seq is set only by the writer that moves its chain's head, with the head's row
locked (the transactional way) or by an UPDATE that matches the seq and hash it chained
on (the one-statement way, which under READ COMMITTED re-reads a head another writer
moved and then aborts). Verification walks every chain in one sorted pass instead of
an index scan a chain, and pruning cuts every chain in one statement, so neither needs
the index; tampering that repeats a seq is reported by verification as before.

Sweeping 200,000 expired secrets alone: PostgreSQL's CPU per row 7.8 us with the index,
6.2 without; WAL per row 464 bytes with it, 388 without (bench/FINDINGS.md, fifteenth
round).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_constraint("uq_audit_events_part_seq", "audit_events", type_="unique")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_unique_constraint("uq_audit_events_part_seq", "audit_events", ["part", "seq"])
