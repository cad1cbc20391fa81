"""The load: clients in conceal/reveal loops against the service, and the ledger of what
they were told."""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.factories import V2
from tests.reliability.service import Service


def seeded(test: str) -> tuple[int, random.Random]:
    seed = int(os.environ.get("OTS_RELIABILITY_SEED") or random.SystemRandom().getrandbits(32))
    print(f"\n{test}: seed {seed} (OTS_RELIABILITY_SEED={seed} repeats its choices)")
    return seed, random.Random(seed)  # noqa: S311  # test choices, not secrets


@dataclass(frozen=True)
class Call:
    op: str  # conceal, reveal, or hot (a reveal of a locked secret)
    outcome: str  # the HTTP status, or timeout, refused (never connected), dropped
    started: float
    ended: float


@dataclass
class Ledger:
    """What the clients were told: the only facts the invariants may rest on."""

    created: dict[str, tuple[str, str]] = field(default_factory=dict)  # key: value, receipt
    revealed: Counter[str] = field(default_factory=Counter)  # 200 reveals per share key
    ambiguous: set[str] = field(default_factory=set)  # a reveal got a 5xx or no answer
    unknown: set[str] = field(default_factory=set)  # a reveal got a 404
    open: list[str] = field(default_factory=list)  # acknowledged, no 200 reveal yet
    calls: list[Call] = field(default_factory=list)
    wrong_values: int = 0
    no_retry_after: int = 0

    def outcomes(self) -> Counter[str]:
        return Counter(call.outcome for call in self.calls)

    def recovery(self, moment: float) -> float:
        """Seconds from `moment` until a request started after it succeeded."""
        ends = [c.ended for c in self.calls if c.outcome == "200" and c.started >= moment]
        return round(min(ends) - moment, 3) if ends else math.inf


class Load:
    """Clients in conceal/reveal loops with unique plaintexts, every request bounded."""

    def __init__(self, service: Service, ledger: Ledger, rng: random.Random, bound: float):
        self.service, self.ledger, self.rng, self.bound = service, ledger, rng, bound

    async def run(
        self, stop: asyncio.Event, clients: int, hot: Sequence[str] = (), hot_clients: int = 0
    ) -> None:
        timeout = aiohttp.ClientTimeout(total=self.bound)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(
                *(self._client(session, f"c{n}", stop) for n in range(clients)),
                *(self._hammer(session, hot, stop) for _ in range(hot_clients)),
            )

    async def _client(self, session: aiohttp.ClientSession, name: str, stop: asyncio.Event) -> None:
        ledger, rng, n = self.ledger, self.rng, 0
        while not stop.is_set():
            if ledger.open and rng.random() < 0.5:  # several clients may pick the same key
                outcome = await self.reveal(session, rng.choice(ledger.open))
            elif ledger.created and rng.random() < 0.05:  # revealed or not: 200 once, then 404
                outcome = await self.reveal(session, rng.choice(list(ledger.created)))
            else:
                n += 1
                outcome = await self.conceal(session, f"{name}-{n}-{rng.getrandbits(64):016x}")
            await self._back_off(outcome)

    async def _hammer(
        self, session: aiohttp.ClientSession, keys: Sequence[str], stop: asyncio.Event
    ) -> None:
        while not stop.is_set() and not all(self.ledger.revealed[key] for key in keys):
            await self._back_off(await self.reveal(session, self.rng.choice(keys), "hot"))

    async def _back_off(self, outcome: str) -> None:
        if outcome not in {"200", "404"}:
            await asyncio.sleep(0.05)  # Retry-After's 5 s would leave the faults unexercised

    async def conceal(self, session: aiohttp.ClientSession, value: str) -> str:
        body = {"secret": {"secret": value}}
        outcome, answer = await self._post(session, "conceal", "/secret/conceal", body)
        if outcome == "200":
            record = answer["record"]
            self.ledger.created[record["secret"]["key"]] = (value, record["metadata"]["key"])
            self.ledger.open.append(record["secret"]["key"])
        return outcome

    async def reveal(self, session: aiohttp.ClientSession, key: str, op: str = "reveal") -> str:
        path = f"/secret/{key}/reveal"
        outcome, answer = await self._post(session, op, path, {"continue": True})
        ledger = self.ledger
        if outcome == "200":
            ledger.revealed[key] += 1
            ledger.wrong_values += answer["record"]["secret_value"] != ledger.created[key][0]
            if key in ledger.open:
                ledger.open.remove(key)
        elif outcome == "404":
            ledger.unknown.add(key)
        elif outcome != "refused":
            ledger.ambiguous.add(key)  # it may have committed before the answer was lost
        return outcome

    async def _post(
        self, session: aiohttp.ClientSession, op: str, path: str, body: object
    ) -> tuple[str, Any]:
        started, answer = time.monotonic(), None
        try:
            async with session.post(f"{self.service.base}{V2}{path}", json=body) as response:
                if response.status == 503 and not response.headers.get("Retry-After"):
                    self.ledger.no_retry_after += 1
                answer = await response.json(content_type=None)
                outcome = str(response.status)
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientConnectorError:
            outcome = "refused"  # never reached the service: certainly not processed
        except (aiohttp.ClientError, ValueError):
            outcome = "dropped"
        self.ledger.calls.append(Call(op, outcome, started, time.monotonic()))
        return outcome, answer
