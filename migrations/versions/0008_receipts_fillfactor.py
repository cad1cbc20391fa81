"""receipts keep room for their one update

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 00:10:00

A receipt is updated once in its life when its secret is revealed, burned or expired
(a generated one maybe once more, when its value is claimed), and none of the columns
that change is indexed. With pages packed full the new version
went to another page, and each of the receipts' three indexes got a new entry for it.
With 30 % of each page kept free the update stays on its page as a heap-only tuple: a
sweeper batch of 500 expiries took 10 ms instead of 14 to 18 (EXPLAIN ANALYZE on 200,000
rows, bench/FINDINGS.md). New pages only; existing ones fill as they are rewritten.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 70


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(f"ALTER TABLE receipts SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE receipts RESET (fillfactor)")
