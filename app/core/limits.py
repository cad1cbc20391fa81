"""Request rate limits per client and event, counted in PostgreSQL so every pod agrees."""

from __future__ import annotations

from app import crypto, metrics
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.counts import Count
from app.core.errors import RateLimited
from app.store.ratelimits import Hit


def count_of(svc: Services, caller: Caller, event: str) -> Count | None:
    """How to count this request, or None if the caller's plan has no limits."""
    if not svc.plan(caller.plan).rate_limited:
        return None
    ref = crypto.client_ref(svc.keys, caller.rate_key)
    return Count(ref, event, svc.rate_limits.window_seconds)


async def throttle(svc: Services, caller: Caller, event: str) -> None:
    """Count this request (in a batch, under load: Counts); RateLimited once the client is
    over its limit for the window. A client far below its limit goes on at once, its
    count made in the background (app/core/headroom.py)."""
    count = count_of(svc, caller, event)
    if count is None:
        return
    if svc.counts.hit_early(count, svc.rate_limits.limit(event)):
        metrics.child(metrics.RATE_COUNTED_EARLY, event).inc()
        return
    await judge(svc, caller, count, await svc.counts.hit(count))


async def judge(svc: Services, caller: Caller, count: Count, hit: Hit) -> None:
    """RateLimited if this hit is over the limit (the count is already made)."""
    limit = svc.rate_limits.limit(count.event)
    if hit.hits <= limit:
        return
    if hit.hits == limit + 1:
        # Once per client, event and window: a flood must not flood the trail too. A refusal
        # changes no state, so its event need not share the counter's statement.
        await svc.writes.record(caused_by(caller, "rate.limited", "denied", detail=count.event))
    metrics.RATE_LIMITED.labels(count.event).inc()
    raise RateLimited(hit.retry_after)
