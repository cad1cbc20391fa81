"""Accounts and API tokens: authenticate a caller; add, rotate, disable, list (admin CLI)."""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import NoReturn

from app import crypto
from app.config import ACCOUNT_PLANS
from app.core import audit, rules
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import InvalidRequest, NotAuthorized
from app.store import customers as store
from app.store.customers import Customer

# Compared against when the custid is unknown, so both failures take the same time.
_NO_DIGEST = bytes(32)


async def authenticate(svc: Services, caller: Caller, custid: str, token: str) -> Caller:
    """The account behind Basic credentials; NotAuthorized for anything unusable.

    `caller` is the anonymous caller the request came in as (address, user agent).
    """
    async with svc.store.connection() as db:
        customer = await store.get_customer(db, custid.strip().lower())
    expected = customer.token_digest if customer else _NO_DIGEST
    matches = hmac.compare_digest(expected, crypto.token_digest(svc.keys, token))
    if customer is None or customer.disabled or not matches:
        await refuse(svc, caller, custid)
    assert customer is not None  # noqa: S101  # refuse() always raises
    return replace(caller, custid=customer.custid, plan=customer.plan, admin=customer.admin)


async def refuse(svc: Services, caller: Caller, claimed: str) -> NoReturn:
    """Record the failed attempt (with the claimed name, never the token), then refuse.

    The name is kept only if it looks like an account name: a client that swapped the
    fields would otherwise write its token into the trail."""
    name = claimed.strip().lower()[:254]
    detail = name if rules.EMAIL.fullmatch(name) else ("(not an e-mail)" if name else None)
    event = caused_by(caller, "auth.failed", "denied", detail=detail)
    async with svc.store.transaction() as tx:
        await audit.record(tx, svc.audit_key, [event])
    raise NotAuthorized


OPERATOR = Caller(client="local", custid="operator")


async def add_customer(
    svc: Services, email: str, plan: str, *, admin: bool = False, by: Caller = OPERATOR
) -> str:
    """Create an account; returns its API token, which is never stored or shown again."""
    custid = _custid(email)
    if plan not in ACCOUNT_PLANS:
        raise InvalidRequest(f"plan must be one of {', '.join(ACCOUNT_PLANS)}")
    token = crypto.new_token()
    digest = crypto.token_digest(svc.keys, token)
    async with svc.store.transaction() as tx:
        if not await store.insert_customer(tx, custid, plan, digest, admin):
            raise InvalidRequest(f"{custid} already exists")
        await audit.record(tx, svc.audit_key, [caused_by(by, "token.created", detail=custid)])
    return token


async def rotate_token(svc: Services, email: str, *, by: Caller = OPERATOR) -> str:
    """A new token; the old one stops working at once."""
    custid = _custid(email)
    token = crypto.new_token()
    async with svc.store.transaction() as tx:
        if not await store.set_token(tx, custid, crypto.token_digest(svc.keys, token)):
            raise InvalidRequest(f"no such customer: {custid}")
        await audit.record(tx, svc.audit_key, [caused_by(by, "token.rotated", detail=custid)])
    return token


async def disable_customer(svc: Services, email: str, *, by: Caller = OPERATOR) -> None:
    custid = _custid(email)
    async with svc.store.transaction() as tx:
        if not await store.disable_customer(tx, custid):
            raise InvalidRequest(f"no such customer: {custid}")
        await audit.record(tx, svc.audit_key, [caused_by(by, "token.disabled", detail=custid)])


async def list_customers(svc: Services) -> list[Customer]:
    async with svc.store.connection() as db:
        return await store.list_customers(db)


def _custid(email: str) -> str:
    address = email.strip().lower()
    if not rules.EMAIL.fullmatch(address):
        raise InvalidRequest(f"not an e-mail address: {email!r}")
    return address
