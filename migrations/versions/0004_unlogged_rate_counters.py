"""rate counters unlogged

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:20:00

Every request upserts its rate counter in a transaction of its own. Logged, each of
those commits waits for a WAL flush: a second fsync per request beside the one of the
change itself. Unlogged, the counter writes no WAL and its commit waits for nothing.
The cost is acceptable: after a crash of the database server the counters start from
zero (a window's worth of extra requests at most), and standbys do not see them, which
no one reads there.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE rate_counters SET UNLOGGED")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE rate_counters SET LOGGED")
