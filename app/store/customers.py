"""Accounts: custid (an e-mail), plan, a keyed hash of the API token, disabled flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.store.db import Db


@dataclass(frozen=True)
class Customer:
    custid: str
    plan: str
    token_digest: bytes
    disabled: bool
    admin: bool
    created: datetime


_COLUMNS = "custid, plan, token_digest, disabled, admin, created_at AS created"
GET = f"SELECT {_COLUMNS} FROM customers WHERE custid = $1"  # noqa: S608  # constant columns
LIST = f"SELECT {_COLUMNS} FROM customers ORDER BY custid"  # noqa: S608  # constant columns
INSERT = """
INSERT INTO customers (custid, plan, token_digest, admin) VALUES ($1, $2, $3, $4)
ON CONFLICT (custid) DO NOTHING
RETURNING custid
"""
REPLACE_DIGEST = """
UPDATE customers SET token_digest = $2, disabled = false, updated_at = now()
 WHERE custid = $1 RETURNING custid
"""
DISABLE = (
    "UPDATE customers SET disabled = true, updated_at = now() WHERE custid = $1 RETURNING custid"
)


async def get_customer(db: Db, custid: str) -> Customer | None:
    row = await db.fetchrow(GET, custid)
    return None if row is None else Customer(**row)


async def list_customers(db: Db) -> list[Customer]:
    return [Customer(**row) for row in await db.fetch(LIST)]


async def insert_customer(
    db: Db, custid: str, plan: str, token_digest: bytes, admin: bool = False
) -> bool:
    """False when the custid is taken."""
    return await db.fetchval(INSERT, custid, plan, token_digest, admin) is not None


async def set_token(db: Db, custid: str, token_digest: bytes) -> bool:
    """Replace the token (the old one stops working at once); also re-enables."""
    return await db.fetchval(REPLACE_DIGEST, custid, token_digest) is not None


async def disable_customer(db: Db, custid: str) -> bool:
    return await db.fetchval(DISABLE, custid) is not None


@dataclass(frozen=True)
class Webhook:
    url: str
    key_id: int
    secret_sealed: bytes


SET_WEBHOOK = """
UPDATE customers SET webhook_url = $2, webhook_key_id = $3, webhook_secret_sealed = $4,
       updated_at = now()
 WHERE custid = $1 RETURNING custid
"""
GET_WEBHOOK = """
SELECT webhook_url AS url, webhook_key_id AS key_id, webhook_secret_sealed AS secret_sealed
  FROM customers WHERE custid = $1 AND webhook_url IS NOT NULL AND NOT disabled
"""
SET_NOTIFY_SENDER = """
UPDATE customers SET notify_sender = $2, updated_at = now() WHERE custid = $1 RETURNING custid
"""
NOTIFY_SENDER = "SELECT notify_sender FROM customers WHERE custid = $1 AND NOT disabled"


async def set_webhook(db: Db, custid: str, hook: Webhook | None) -> bool:
    """Configure (or with None remove) the account's webhook; False for no such account."""
    values = (hook.url, hook.key_id, hook.secret_sealed) if hook else (None, None, None)
    return await db.fetchval(SET_WEBHOOK, custid, *values) is not None


async def get_webhook(db: Db, custid: str) -> Webhook | None:
    row = await db.fetchrow(GET_WEBHOOK, custid)
    return None if row is None else Webhook(**row)


async def set_notify_sender(db: Db, custid: str, on: bool) -> bool:
    return await db.fetchval(SET_NOTIFY_SENDER, custid, on) is not None


async def notify_sender(db: Db, custid: str) -> bool:
    """Whether the account still wants its own mails (checked again at delivery)."""
    return bool(await db.fetchval(NOTIFY_SENDER, custid))
