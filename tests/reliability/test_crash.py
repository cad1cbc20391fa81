"""Crash consistency: the service SIGKILLed at random moments under a concurrent
conceal/reveal workload, and started again on the same database each time.

Only what a client was told counts: (plaintext, key) for 2xx creates, and the keys whose
reveal answered 200. Afterwards every acknowledged create not yet revealed reveals exactly
its plaintext once, then 404; every acknowledged reveal stays 404. A reveal in flight at a
kill is ambiguous (at most once): its secret may be gone unseen, with its one
`secret.revealed` audit event, but it is never shown twice. A create in flight at a kill
was never acknowledged, so nothing is expected of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.conftest import throwaway_database
from tests.reliability.figures import publish
from tests.reliability.invariants import audit_chain, check, settle, summary, worst
from tests.reliability.load import Ledger, Load, seeded
from tests.reliability.service import RECOVERY_BOUND, Service, request_bound, service_env

KILLS, KILL_SECONDS, CLIENTS = 20, 60.0, 20
# Connection refused while the process is down; dropped when it dies mid-request.
OUTCOMES = frozenset({"200", "404", "503", "refused", "dropped"})


@pytest.fixture
def crash_db(server_url: str) -> Iterator[str]:
    with throwaway_database(server_url, "crash") as url:
        yield url


async def test_sigkill_at_random_points_loses_nothing_and_reveals_nothing_twice(
    crash_db: str,
) -> None:
    seed, rng = seeded("crash_sigkill")
    began, ledger, acquire = time.monotonic(), Ledger(), 2.0
    service = Service(crash_db, service_env(pool_max=10, acquire_timeout=acquire))
    outages: list[tuple[float, float]] = []
    try:
        await service.start()
        load, stop = Load(service, ledger, rng, request_bound(acquire)), asyncio.Event()
        traffic = asyncio.create_task(load.run(stop, CLIENTS))
        deadline = time.monotonic() + KILL_SECONDS
        while len(outages) < KILLS and time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            killed = time.monotonic()
            service.kill()
            await service.start()  # same database, new process (and port)
            outages.append((killed, time.monotonic()))
        await asyncio.sleep(RECOVERY_BOUND)
        stop.set()
        await asyncio.wait_for(traffic, load.bound + 5)
        verdict = await settle(ledger, service.base, crash_db)
    finally:
        service.kill()
    recoveries = [ledger.recovery(up) for _, up in outages]
    cut = [call for call in ledger.calls if call.outcome == "dropped"]
    chain_intact, chain_report = await audit_chain(crash_db)
    publish(
        "crash_sigkill",
        seed=seed,
        clients=CLIENTS,
        faults_injected=len(outages),
        cut_creates=sum(call.op == "conceal" for call in cut),
        cut_reveals=sum(call.op == "reveal" for call in cut),
        max_restart_s=round(max(up - down for down, up in outages), 3),
        **summary(load, verdict),
        max_recovery_s=worst(recoveries),
        audit_chain_intact=chain_intact,
        wall_s=round(time.monotonic() - began, 1),
    )
    check(load, verdict, OUTCOMES)
    assert len(outages) >= KILLS // 2
    assert cut  # kills did land on requests in flight
    assert max(recoveries) <= RECOVERY_BOUND
    assert chain_intact, chain_report
