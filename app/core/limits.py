"""Request rate limits per client and event, counted in PostgreSQL so every pod agrees."""

from __future__ import annotations

from app import crypto
from app.core.context import Caller, Services
from app.core.errors import RateLimited
from app.store import ratelimits


async def throttle(svc: Services, caller: Caller, event: str) -> None:
    """Count this request; RateLimited once the client is over its limit for the window."""
    if not svc.plan(caller.plan).rate_limited:
        return
    ref = crypto.client_ref(svc.keys, caller.rate_key)
    async with svc.store.connection() as db:
        hit = await ratelimits.hit(db, ref, event, svc.rate_limits.window_seconds)
    if hit.hits > svc.rate_limits.limit(event):
        raise RateLimited(hit.retry_after)
