"""audit writes in one statement: a guard function and 64 chains

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 21:10:00

A change and its audit rows are now written by one statement, in its own implicit
transaction, with the chain hashes computed beforehand from a head the process keeps
in memory (app/core/chains.py). If the head has moved meanwhile (another process wrote
to the same chain), the statement must not commit the change without its rows:
`ots_audit_guard(false)` raises serialization_failure, which aborts the whole statement,
and the writer reloads the head and tries again.

64 chains instead of 16, so that each process can keep a set of chains mostly its own:
a chain written by two processes makes both reload its head more often.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PARTITIONS = 16
PARTITIONS = 64

GUARD = """
CREATE FUNCTION ots_audit_guard(head_moved_with_us boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT head_moved_with_us THEN
        RAISE EXCEPTION 'audit chain head moved; reload it and retry'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END $$
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(GUARD)
    op.execute(
        "INSERT INTO audit_heads (part, seq, chain_hash) "  # noqa: S608  # constants only
        "SELECT g, 0, sha256(convert_to('ots.audit.v1/' || g, 'UTF8')) "
        f"FROM generate_series({OLD_PARTITIONS}, {PARTITIONS - 1}) g"
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DROP FUNCTION ots_audit_guard(boolean)")
    # Chains that hold rows cannot go without losing them; only empty ones are dropped.
    op.execute(
        f"DELETE FROM audit_heads WHERE part >= {OLD_PARTITIONS} AND seq = 0 AND pruned_seq = 0"  # noqa: S608
    )
