"""Accounts and API tokens: authenticate a caller; add, rotate, disable, list (admin CLI)."""

from __future__ import annotations

import hmac

from app import crypto
from app.config import ACCOUNT_PLANS
from app.core import rules
from app.core.context import Caller, Services
from app.core.errors import InvalidRequest, NotAuthorized
from app.store import customers as store
from app.store.customers import Customer

# Compared against when the custid is unknown, so both failures take the same time.
_NO_DIGEST = bytes(32)


async def authenticate(svc: Services, custid: str, token: str, client: str) -> Caller:
    """The account behind Basic credentials; NotAuthorized for anything unusable."""
    async with svc.store.connection() as db:
        customer = await store.get_customer(db, custid.strip().lower())
    expected = customer.token_digest if customer else _NO_DIGEST
    matches = hmac.compare_digest(expected, crypto.token_digest(svc.keys, token))
    if customer is None or customer.disabled or not matches:
        raise NotAuthorized
    return Caller(client=client, custid=customer.custid, plan=customer.plan)


async def add_customer(svc: Services, email: str, plan: str) -> str:
    """Create an account; returns its API token, which is never stored or shown again."""
    custid = _custid(email)
    if plan not in ACCOUNT_PLANS:
        raise InvalidRequest(f"plan must be one of {', '.join(ACCOUNT_PLANS)}")
    token = crypto.new_token()
    async with svc.store.connection() as db:
        if not await store.insert_customer(db, custid, plan, crypto.token_digest(svc.keys, token)):
            raise InvalidRequest(f"{custid} already exists")
    return token


async def rotate_token(svc: Services, email: str) -> str:
    """A new token; the old one stops working at once."""
    custid = _custid(email)
    token = crypto.new_token()
    async with svc.store.connection() as db:
        if not await store.set_token(db, custid, crypto.token_digest(svc.keys, token)):
            raise InvalidRequest(f"no such customer: {custid}")
    return token


async def disable_customer(svc: Services, email: str) -> None:
    custid = _custid(email)
    async with svc.store.connection() as db:
        if not await store.disable_customer(db, custid):
            raise InvalidRequest(f"no such customer: {custid}")


async def list_customers(svc: Services) -> list[Customer]:
    async with svc.store.connection() as db:
        return await store.list_customers(db)


def _custid(email: str) -> str:
    address = email.strip().lower()
    if not rules.EMAIL.fullmatch(address):
        raise InvalidRequest(f"not an e-mail address: {email!r}")
    return address
