"""Which rows still need a master key."""

from __future__ import annotations

from app.store.db import Db

# Receipts keep the share key sealed while the secret lives, and (for accounts) their own
# key until they expire; pending recipient mails and webhook signing secrets are sealed
# too. A master key is needed until all of those are gone.
SEALED_WITH = """
SELECT (SELECT count(*) FROM secrets WHERE key_id = $1 AND expires_at > now())
     + (SELECT count(*) FROM receipts WHERE key_id = $1 AND expires_at > now()
          AND (share_key_sealed IS NOT NULL OR receipt_key_sealed IS NOT NULL))
     + (SELECT count(*) FROM notifications WHERE key_id = $1 AND payload_sealed IS NOT NULL)
     + (SELECT count(*) FROM customers WHERE webhook_key_id = $1)
"""


async def rows_sealed_with(db: Db, key_id: int) -> int:
    count: int = await db.fetchval(SEALED_WITH, key_id)
    return count
