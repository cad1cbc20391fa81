"""Request rate limits per client and event, counted in PostgreSQL so every pod agrees."""

from __future__ import annotations

from app import crypto, metrics
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.counts import Count
from app.core.errors import RateLimited
from app.store import ratelimits
from app.store.db import Db
from app.store.ratelimits import Hit


def count_of(svc: Services, caller: Caller, event: str) -> Count | None:
    """How to count this request, or None if the caller's plan has no limits."""
    if not svc.plan(caller.plan).rate_limited:
        return None
    ref = crypto.client_ref(svc.keys, caller.rate_key)
    return Count(ref, event, svc.rate_limits.window_seconds)


async def throttle(svc: Services, caller: Caller, event: str, db: Db | None = None) -> None:
    """Count this request; RateLimited once the client is over its limit for the window.
    On `db` if the caller holds a connection already, else in a batch (Counts)."""
    count = count_of(svc, caller, event)
    if count is None:
        return
    if db is None:
        hit = await svc.counts.hit(count)
    else:
        hit = await ratelimits.hit(db, *count.args)
    await judge(svc, caller, count, hit, db)


async def judge(svc: Services, caller: Caller, count: Count, hit: Hit, db: Db | None) -> None:
    """RateLimited if this hit is over the limit (the count is already made). `db`: the
    caller's connection, if it holds one, which records the refusal (never a second one
    from the pool while holding the first: a burst of refusals could wait on the pool
    until every request timed out)."""
    limit = svc.rate_limits.limit(count.event)
    if hit.hits <= limit:
        return
    if hit.hits == limit + 1:
        # Once per client, event and window: a flood must not flood the trail too. A refusal
        # changes no state, so its event need not share the counter's transaction.
        event = caused_by(caller, "rate.limited", "denied", detail=count.event)
        if db is None:
            async with svc.store.connection() as conn:
                await svc.chains.record(conn, svc.audit_key, event)
        else:
            await svc.chains.record(db, svc.audit_key, event)
    metrics.RATE_LIMITED.labels(count.event).inc()
    raise RateLimited(hit.retry_after)
