"""a secret's passphrase guesses go in the statement that removes it

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 02:20:00

The foreign keys from passphrase_attempts and passphrase_lockouts to secrets cascaded a
secret's removal to its guesses through two row triggers, each a query of its own for
every secret removed, guesses or not: about 6 of the 20 µs the sweeper spent on a row
in PostgreSQL (purging 500 of 200,000 expired rows, fastest of 7 timed runs: 10.1 ms
with them, 6.8 without; medians 11.0 and 7.1). The statements that remove secrets
(reveal, burn, their batches, the sweeper) now delete the guesses themselves, as one
join per statement (7.2 ms for the same 500, median 7.6), and an auditor sees the
deletes in the statement's own SQL. A guess committed while such a statement waited for
the secret's row is not in its snapshot (a cascade's trigger would have seen it): each
sweeper pass deletes guesses whose secret is gone (store.expiry.PURGE_ORPHAN_GUESSES).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUESSES = ("passphrase_attempts", "passphrase_lockouts")


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    for table in GUESSES:
        op.drop_constraint(f"fk_{table}_secret_id_secrets", table, type_="foreignkey")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # No guess may be added between the clean-up and the constraint's check.
    op.execute("LOCK TABLE passphrase_attempts, passphrase_lockouts IN SHARE ROW EXCLUSIVE MODE")
    for table in GUESSES:
        # Guesses whose secret is gone would fail the constraint; the cascade took them.
        op.execute(
            f"DELETE FROM {table} g WHERE NOT EXISTS "  # noqa: S608  # constant names
            "(SELECT 1 FROM secrets s WHERE s.id = g.secret_id)"
        )
        op.create_foreign_key(
            f"fk_{table}_secret_id_secrets",
            table,
            "secrets",
            ["secret_id"],
            ["id"],
            ondelete="CASCADE",
        )
