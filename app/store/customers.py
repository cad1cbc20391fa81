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
