"""audit_events: no index on receipt_ref

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 10:00:00

No query of the service reads audit rows by receipt: the export pages by time and id,
verification walks each chain by (part, seq), pruning cuts by (part, seq) and time. The
index cost every audited write an insert at a random leaf (receipt ids are random), the
costliest of the table's four index entries. Sweeping 300,000 expired secrets alone (two
runs each): PostgreSQL's CPU per row 10.1 to 10.8 us before, 7.6 and 7.7 after; WAL per
row 882 to 935 bytes before, 750 after (bench/FINDINGS.md, seventh round). Looking up
one receipt's events now scans the trail, or the part of it within a time range.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_audit_events_receipt_ref", table_name="audit_events")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index("ix_audit_events_receipt_ref", "audit_events", ["receipt_ref"])
