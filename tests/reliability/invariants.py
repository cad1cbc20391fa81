"""After the faults: every acknowledged secret revealed once more, and the answers, the
audit trail and the figures held against what the clients were told.

At most once: a reveal whose COMMIT happened but whose answer was lost (the connection
died after COMMIT, or the answer never reached the client) counts as revealed. Its secret
is gone and the audit trail, written in the same transaction, holds its one
`secret.revealed` event. Only a secret whose reveal ended in a 503 or without an answer
may be gone unseen, and only with that event.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import aiohttp

from app import crypto
from tests.factories import TEST_KEYS, V2
from tests.processes import BOUND, clean_env
from tests.reliability.load import Ledger, Load
from tests.reliability.pgserver import connected

RING = crypto.parse_keyring(TEST_KEYS)


@dataclass
class Verdict:
    acknowledged: int = 0
    revealed_during_faults: int = 0
    revealed_after_faults: int = 0
    consumed_unanswered: int = 0  # ambiguous reveals that had committed (at most once)
    double_reveals: int = 0
    lost: int = 0
    false_404s: int = 0  # a live secret answered as unknown
    wrong_values: int = 0
    audit_mismatches: int = 0  # a consumed secret without exactly one secret.revealed
    final_failures: int = 0  # final reveals answered with neither 200 nor 404

    def violations(self) -> dict[str, int]:
        return {
            "double_reveals": self.double_reveals,
            "lost": self.lost,
            "false_404s": self.false_404s,
            "wrong_values": self.wrong_values,
            "audit_mismatches": self.audit_mismatches,
            "final_failures": self.final_failures,
        }


async def settle(ledger: Ledger, base: str, database_url: str, concurrency: int = 8) -> Verdict:
    """After the faults: reveal every acknowledged secret (twice if the first works) and
    hold the answers and the audit trail against what the clients were told."""
    slots = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=BOUND)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def twice(key: str) -> tuple[int, int, str | None]:
            async with slots:
                first, value = await _final_reveal(session, f"{base}{V2}/secret/{key}/reveal")
                if first != 200:
                    return first, 0, value
                second, _ = await _final_reveal(session, f"{base}{V2}/secret/{key}/reveal")
                return first, second, value

        finals = await asyncio.gather(*(twice(key) for key in ledger.created))
    events = await _reveal_events(database_url, [r for _, r in ledger.created.values()])
    verdict = Verdict(acknowledged=len(ledger.created), wrong_values=ledger.wrong_values)
    for (key, (value, receipt)), final in zip(ledger.created.items(), finals, strict=True):
        _judge(verdict, ledger, key, value, final, events[receipt])
    return verdict


async def _final_reveal(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    """No fault is injected any more, but a pool of three may still ask us to wait. (A
    503 here cannot have committed; if it had, the retry's 404 would count as lost, a
    false alarm rather than a missed one.)"""
    for _ in range(40):
        async with session.post(url, json={"continue": True}) as response:
            if response.status != 503:
                body = await response.json()
                return response.status, body.get("record", {}).get("secret_value")
        await asyncio.sleep(0.25)
    return 503, None


def _judge(
    verdict: Verdict,
    ledger: Ledger,
    key: str,
    value: str,
    final: tuple[int, int, str | None],
    events: int,
) -> None:
    first, second, shown = final
    before = ledger.revealed[key]
    verdict.revealed_during_faults += before > 0
    verdict.final_failures += first not in {200, 404} or second not in {0, 404}
    verdict.double_reveals += before > 1 or (before > 0 and first == 200) or second == 200
    verdict.audit_mismatches += events != 1
    if first == 200:
        verdict.revealed_after_faults += before == 0
        verdict.wrong_values += shown != value
        verdict.false_404s += before == 0 and key in ledger.unknown
    elif before == 0:  # gone without anyone having been shown it
        answer_lost = key in ledger.ambiguous and events == 1
        verdict.consumed_unanswered += answer_lost
        verdict.lost += not answer_lost


async def _reveal_events(database_url: str, receipts: list[str]) -> Counter[str]:
    """secret.revealed events per receipt key (the trail holds only keyed hashes)."""
    refs = {crypto.lookup_id(RING, receipt): receipt for receipt in receipts}
    async with connected(database_url) as conn:
        rows = await conn.fetch(
            "SELECT receipt_ref, count(*) AS n FROM audit_events"
            " WHERE event = 'secret.revealed' AND receipt_ref = ANY($1::bytea[])"
            " GROUP BY receipt_ref",
            list(refs),
        )
    return Counter({refs[bytes(row["receipt_ref"])]: row["n"] for row in rows})


async def audit_chain(database_url: str) -> tuple[bool, str]:
    """`python -m app audit verify`: faults must not break the hash chains either."""
    env = clean_env(DATABASE_URL=database_url, OTS_KEYS=TEST_KEYS)
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app", "audit", "verify"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), BOUND)
    return proc.returncode == 0, output.decode()


def worst(seconds: Sequence[float]) -> float | None:
    """The largest figure, or None (JSON null) if a recovery never came."""
    largest = max(seconds)
    return None if math.isinf(largest) else largest


def summary(load: Load, verdict: Verdict) -> dict[str, object]:
    ledger, service = load.ledger, load.service
    outcomes = ledger.outcomes()
    return {
        "requests": len(ledger.calls),
        "ok_200": outcomes["200"],
        "not_found_404": outcomes["404"],
        "unavailable_503": outcomes["503"],
        "errors_500": outcomes["500"],
        "no_answer": outcomes["dropped"] + outcomes["timeout"],
        "503_reasons": dict(service.unavailable),
        "log_errors": service.errors,
        "max_latency_s": round(max(c.ended - c.started for c in ledger.calls), 3),
        "request_bound_s": load.bound,
        **asdict(verdict),
        "violations": outcomes["500"] + service.unhandled + sum(verdict.violations().values()),
    }


def check(load: Load, verdict: Verdict, allowed: frozenset[str]) -> None:
    # Outside a test module pytest does not rewrite asserts, so each names what it saw.
    ledger, service = load.ledger, load.service
    outcomes = ledger.outcomes()
    assert outcomes["500"] == 0, service.log()
    assert service.unhandled == 0, service.log()
    assert service.errors == 0, service.log()  # no ERROR line either, whoever logged it
    assert set(outcomes) <= allowed, outcomes  # nothing else: no timeout, no other status
    assert ledger.no_retry_after == 0, ledger.no_retry_after
    violations = verdict.violations()
    assert violations == dict.fromkeys(violations, 0), violations
    assert verdict.acknowledged > 100, verdict
    assert verdict.revealed_during_faults > 0, verdict
