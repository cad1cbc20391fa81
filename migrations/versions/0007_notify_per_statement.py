"""notifications: the outbox filled once per statement, not once per audit row

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 00:00:00

0006's trigger ran a PL/pgSQL call and a receipt lookup for every audit row of the four
events. Audit rows now mostly arrive many to a statement (the sweeper's batches of 500,
group commit's batches of creates and reveals), and EXPLAIN ANALYZE put the per-row
trigger at 3.4 ms of a 6.2 ms append of 500 expiry events (bench/FINDINGS.md). The
statement-level trigger reads the statement's new rows as a transition table and fills
the outbox with one INSERT ... SELECT: the same rows as before, in the same transaction.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS = "('secret.created', 'secret.revealed', 'secret.burned', 'secret.expired')"

# As 0006's, for every row of the statement at once: the event id derived from the
# audit row's id; the webhook for every event, the sender's mail for reveal and expiry;
# anonymous receipts and accounts without settings insert nothing. In event order.
ENQUEUE_ROWS = f"""
CREATE FUNCTION ots_notify_enqueue_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (event_id, channel, event, receipt_ref, secret_shortkey,
                               custid, occurred_at)
    SELECT md5('ots.event/' || e.id)::uuid, wanted.channel, e.event, e.receipt_ref,
           r.secret_shortkey, c.custid, e.at
      FROM new_events e
      JOIN receipts r ON r.id = e.receipt_ref
      JOIN customers c ON c.custid = r.custid AND NOT c.disabled
     CROSS JOIN LATERAL (
           VALUES (1, 'webhook', c.webhook_url IS NOT NULL),
                  (2, 'email', c.notify_sender
                               AND e.event IN ('secret.revealed', 'secret.expired'))
           ) AS wanted(n, channel, yes)
     WHERE e.event IN {EVENTS} AND e.outcome = 'success' AND wanted.yes
     ORDER BY e.id, wanted.n;
    RETURN NULL;
END
$$
"""  # noqa: S608  # constants only

TRIGGER_ROWS = """
CREATE TRIGGER audit_events_notify_rows AFTER INSERT ON audit_events
REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT
EXECUTE FUNCTION ots_notify_enqueue_rows()
"""

# 0006's, to go back to.
ENQUEUE = """
CREATE FUNCTION ots_notify_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target record;
BEGIN
    SELECT c.custid, c.notify_sender, c.webhook_url IS NOT NULL AS hooked, r.secret_shortkey
      INTO target
      FROM receipts r JOIN customers c ON c.custid = r.custid AND NOT c.disabled
     WHERE r.id = NEW.receipt_ref;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO notifications (event_id, channel, event, receipt_ref, secret_shortkey,
                               custid, occurred_at)
    SELECT md5('ots.event/' || NEW.id)::uuid, channel, NEW.event, NEW.receipt_ref,
           target.secret_shortkey, target.custid, NEW.at
      FROM (VALUES ('webhook', target.hooked),
                   ('email', target.notify_sender
                             AND NEW.event IN ('secret.revealed', 'secret.expired')))
           AS wanted(channel, yes)
     WHERE yes;
    RETURN NULL;
END
$$
"""

TRIGGER = f"""
CREATE TRIGGER audit_events_notify AFTER INSERT ON audit_events FOR EACH ROW
WHEN (NEW.event IN {EVENTS} AND NEW.outcome = 'success' AND NEW.receipt_ref IS NOT NULL)
EXECUTE FUNCTION ots_notify_enqueue()
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(ENQUEUE_ROWS)
    op.execute(TRIGGER_ROWS)
    op.execute("DROP TRIGGER audit_events_notify ON audit_events")
    op.execute("DROP FUNCTION ots_notify_enqueue()")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(ENQUEUE)
    op.execute(TRIGGER)
    op.execute("DROP TRIGGER audit_events_notify_rows ON audit_events")
    op.execute("DROP FUNCTION ots_notify_enqueue_rows()")
