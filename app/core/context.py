"""What the use cases need: the store, the keys, the rules, and who is asking."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from app import crypto
from app.config import SWEEPER_CONNECTIONS, Limits, Lockout, Plan, RateLimits, Settings
from app.core.batches import GroupCommit
from app.core.chains import Chains
from app.core.counts import Counts
from app.store.db import Store


class PassphraseHasher:
    """Runs argon2id in threads, at most `workers` at once, so the event loop never waits
    on it and memory stays bounded (each run holds memlimit bytes)."""

    def __init__(self, cost: crypto.PassphraseCost, workers: int) -> None:
        self._cost = cost
        self._slots = asyncio.Semaphore(workers)

    async def derive(self, passphrase: str, salt: bytes) -> bytes:
        async with self._slots:
            return await asyncio.to_thread(crypto.passphrase_key, passphrase, salt, self._cost)


@dataclass(frozen=True)
class Services:
    store: Store
    keys: crypto.KeyRing
    limits: Limits
    lockout: Lockout
    hasher: PassphraseHasher
    generated_value_window: int
    site_host: str
    plans: tuple[Plan, ...]
    rate_limits: RateLimits
    share_domains: tuple[str, ...]
    audit_key: bytes
    chains: Chains
    writes: GroupCommit  # audited writes that may go in batches
    counts: Counts  # rate-limit counts, likewise
    base_url: str  # links in notification mail are built like the API's

    def plan(self, name: str) -> Plan:
        return self._plans_by_name[name]

    @functools.cached_property
    def _plans_by_name(self) -> dict[str, Plan]:
        """A request looks its plan up three times or more."""
        return {plan.name: plan for plan in self.plans}

    @classmethod
    def build(cls, settings: Settings, store: Store) -> Services:
        audit_key = crypto.audit_key(settings.keys)
        # The requests' pool and the sweeper's connection: every writer has a chain free.
        chains = Chains(writers=settings.database.pool_max + SWEEPER_CONNECTIONS)
        return cls(
            store=store,
            keys=settings.keys,
            limits=settings.limits,
            lockout=settings.lockout,
            hasher=PassphraseHasher(settings.passphrase_cost, settings.passphrase_workers),
            generated_value_window=settings.generated_value_window,
            site_host=(urlsplit(settings.base_url).hostname or "").lower(),
            plans=settings.plans,
            rate_limits=settings.rate_limits,
            share_domains=settings.share_domains,
            audit_key=audit_key,
            chains=chains,
            writes=GroupCommit(store, chains, audit_key),
            counts=Counts(store),
            base_url=settings.base_url,
        )


@dataclass(frozen=True)
class Caller:
    """Who is asking: an account (custid) or anonymous, and from which address."""

    client: str
    custid: str = "anon"
    plan: str = "anonymous"
    user_agent: str | None = None
    request_id: str | None = None
    admin: bool = False  # may read the audit trail

    @property
    def anonymous(self) -> bool:
        return self.custid == "anon"

    @property
    def rate_key(self) -> str:
        """Accounts are counted as themselves; anonymous callers by address."""
        return f"ip:{self.client}" if self.anonymous else f"account:{self.custid}"


# The service itself as an audit actor: the sweeper, the notification worker.
SYSTEM = Caller(client="", custid="system")
