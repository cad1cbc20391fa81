"""Request rate limits per client and event, counted in PostgreSQL so every pod agrees."""

from __future__ import annotations

from app import crypto, metrics
from app.core import audit
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import RateLimited
from app.store import ratelimits


async def throttle(svc: Services, caller: Caller, event: str) -> None:
    """Count this request; RateLimited once the client is over its limit for the window."""
    if not svc.plan(caller.plan).rate_limited:
        return
    ref = crypto.client_ref(svc.keys, caller.rate_key)
    # One autocommitted upsert: every request pays this, so no transaction around it.
    async with svc.store.connection() as db:
        hit = await ratelimits.hit(db, ref, event, svc.rate_limits.window_seconds)
    limit = svc.rate_limits.limit(event)
    if hit.hits <= limit:
        return
    if hit.hits == limit + 1:
        # Once per client, event and window: a flood must not flood the trail too. A refusal
        # changes no state, so its event need not share the counter's transaction.
        async with svc.store.transaction() as tx:
            await audit.record(
                tx, svc.audit_key, [caused_by(caller, "rate.limited", "denied", detail=event)]
            )
    metrics.RATE_LIMITED.labels(event).inc()
    raise RateLimited(hit.retry_after)
