"""Schemathesis against the real service over HTTP: every operation of the served OpenAPI
document (v2 and v1), every check, every phase (examples, coverage, fuzzing, stateful),
100 generated examples per operation that takes input. Expected: no 5xx, no failed check.

Every operation runs as a plain account, so the admin-only audit trail answers 403 there;
a second, smaller run fuzzes the audit trail as an admin account.

Reproduce or explore: OTS_FUZZ_SEED=<n> pytest tests/reliability/test_fuzz.py -s (the
seed, the figures and schemathesis's own report are printed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import throwaway_database
from tests.processes import add_account, start_server, stop, wait_ready
from tests.reliability.conftest import UNLIMITED
from tests.reliability.figures import publish

EXAMPLES = 100
SEED = os.environ.get("OTS_FUZZ_SEED", "1")
BOUND = 270.0  # seconds for a schemathesis run: the first takes 60 to 150 s on 2 busy cores
EMAIL = "fuzz@example.com"
# A second account for the audit trail alone: admin rights must not widen what the fuzzing
# of every other operation sees, today or once admins may do more.
ADMIN = "fuzz-admin@example.com"
AUDIT = "GET /v2/audit"

# Every check is on. Each exception is one check on named operations, and says why.
# (Per-operation credentials, `auth.basic` under [[operations]], would be simpler than a
# second run, but schemathesis 4.32 sends every request of a worker through the session
# built for its first operation, with that operation's credentials.)
CONFIG = """
[checks]
enabled = true

# v1's contract answers every refusal with 404 and a `message`, which its clients parse:
# a wrong method and missing credentials too. These three checks accept only 405 or 401.
# (tests/test_openapi.py checks those v1 404s against the document.)
[[operations]]
include-path-regex = "^/v1/"
checks.unsupported_method.enabled = false
checks.ignored_auth.enabled = false
checks.missing_required_header.enabled = false

# A wrong passphrase is state, not shape: a well-formed reveal or burn of a secret that has
# a passphrase gets 422 "Incorrect passphrase", as a wrong password would get a 401.
[[operations]]
include-operation-id = ["reveal", "burn", "burnAlias"]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]

# Unknown query parameters are ignored, as upstream does, not refused; the audit trail is
# the one operation that declares any, so the only one schemathesis would add others to.
[[operations]]
include-operation-id = ["auditEvents"]
generation.allow-extra-parameters = false
"""


@dataclass
class Tally:
    """What a run's events say: cases per operation and phase, and the statuses each
    operation answered."""

    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failed_checks: list[str] = field(default_factory=list)

    def per_operation(self, phase: str) -> Counter[str]:
        return Counter({op: n for (op, seen), n in self.cases.items() if seen == phase})

    def answered(self, operation: str) -> Counter[int]:
        return Counter({s: n for (op, s), n in self.statuses.items() if op == operation})

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)


@dataclass(frozen=True)
class Run:
    """One schemathesis run: its summary (the JSON report) and its events, tallied."""

    summary: dict[str, Any]
    tally: Tally
    returncode: int

    def assert_clean(self) -> None:
        summary, tally = self.summary, self.tally
        assert (tally.server_errors, tally.failed_checks, summary["failures"]) == (0, [], [])
        assert (summary["errors"], summary["test_cases"]["errored"], self.returncode) == (
            [],
            0,
            0,
        )


@dataclass(frozen=True)
class Service:
    base: str
    credentials: str  # EMAIL's
    admin_credentials: str  # ADMIN's


@pytest.fixture(scope="module")
def service(server_url: str) -> Iterator[Service]:
    """The service in its own process on a throwaway database, rate limits lifted, and
    two accounts (recipients need one, /recent answers accounts only, /audit admins only)."""
    limits = ",".join(f"{event}={count}" for event, count in UNLIMITED.per_event)
    with throwaway_database(server_url, "fuzz") as url:
        token, admin_token = add_account(url, EMAIL), add_account(url, ADMIN, "--admin")
        # WARNING: the access log would fill the unread pipe and stall the server.
        base, proc = start_server(url, OTS_RATE_LIMITS=limits, OTS_LOG_LEVEL="WARNING")
        try:
            asyncio.run(wait_ready(base))
            yield Service(base, f"{EMAIL}:{token}", f"{ADMIN}:{admin_token}")
        finally:
            logged = stop(proc)
            print(logged[-4000:])
            assert "Traceback" not in logged


def _schemathesis(base: str, credentials: str, out: Path, *options: str) -> Run:
    out.mkdir()
    (out / "schemathesis.toml").write_text(CONFIG, encoding="utf-8")
    command = [
        *(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(out / "schemathesis.toml"),
        ),
        *("run", f"{base}/api/v2/openapi.json", "--auth", credentials, *options),
        *("--max-examples", str(EXAMPLES), "--seed", SEED, "--request-timeout", "10"),
        *("--no-color", "--warnings", "off"),
        *("--report", "json,ndjson", "--report-dir", str(out)),
    ]
    # In `out`, so that schemathesis's cache directory does not land in the checkout.
    run = subprocess.run(  # noqa: S603  # our own interpreter and schemathesis
        command, cwd=out, capture_output=True, text=True, timeout=BOUND, check=False
    )
    print(run.stdout[-6000:], run.stderr[-2000:])
    (summary,) = (json.loads(p.read_text()) for p in out.glob("json-*.json"))
    return Run(summary, _tally(next(out.glob("ndjson-*.ndjson"))), run.returncode)


def _tally(events: Path) -> Tally:
    tally = Tally()
    for line in events.read_text(encoding="utf-8").splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished and "cases" in (finished.get("recorder") or {}):
            _count(tally, finished["phase"], finished["recorder"])
    return tally


def _count(tally: Tally, phase: str, recorder: dict[str, Any]) -> None:
    for case_id, case in recorder["cases"].items():
        operation = f"{case['value']['method']} {case['value']['path']}"
        tally.cases[(operation, phase)] += 1
        interaction = recorder["interactions"].get(case_id) or {}
        if interaction.get("response"):
            tally.statuses[(operation, interaction["response"]["status_code"])] += 1
    for checks in recorder["checks"].values():
        tally.failed_checks += [c["name"] for c in checks if c["status"] != "success"]


async def _inputs(base: str) -> dict[str, bool]:
    """Each operation of the served document, and whether it takes any input."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/api/v2/openapi.json") as r:
        document = await r.json()
    return {
        f"{method.upper()} {path}": bool(
            item.get("parameters") or op.get("parameters") or "requestBody" in op
        )
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }


def test_schemathesis_finds_no_5xx_and_no_violation(service: Service, tmp_path: Path) -> None:
    # A filter that names every path: without one, schemathesis leaves out the operation
    # that serves the document it loaded (GET /v2/openapi.json).
    every = _schemathesis(
        service.base,
        service.credentials,
        tmp_path / "account",
        *("--phases", "examples,coverage,fuzzing,stateful", "--include-path-regex", "^/"),
        *("--workers", "2"),
    )
    admin = _schemathesis(
        service.base,
        service.admin_credentials,
        tmp_path / "admin",
        *("--phases", "examples,coverage,fuzzing", "--include-operation-id", "auditEvents"),
    )
    inputs = asyncio.run(_inputs(service.base))
    fuzzed = every.tally.per_operation("fuzzing")
    runs = (every, admin)
    publish(
        "fuzz",
        operations=every.summary["operations"]["tested"],
        operations_with_input=sum(inputs.values()),
        fewest_examples_with_input=min(
            (n for op, n in fuzzed.items() if inputs.get(op)), default=0
        ),
        audit_as_admin={
            "examples": admin.tally.per_operation("fuzzing")[AUDIT],
            "ok": admin.tally.answered(AUDIT)[200],
        },
        cases=sum(run.summary["test_cases"]["generated"] for run in runs),
        responses=sum(run.tally.responses for run in runs),
        server_errors=sum(run.tally.server_errors for run in runs),
        violations=sum(len(run.tally.failed_checks) for run in runs),
        seed=SEED,
        seconds=round(sum(run.summary["running_time"] for run in runs)),
    )
    for run in runs:
        run.assert_clean()
    assert every.summary["phases"]["stateful"]["status"] == "success"
    assert every.summary["operations"]["tested"] == len(inputs) == len(fuzzed)
    # An operation that takes no input has a single request to send.
    short = {op: n for op, n in fuzzed.items() if n < (EXAMPLES if inputs[op] else 1)}
    assert short == {}
    # The plain account never reads the trail; the admin's run reaches it, page after page.
    assert every.tally.answered(AUDIT)[200] == 0 < every.tally.answered(AUDIT)[403]
    assert admin.tally.per_operation("fuzzing") == Counter({AUDIT: EXAMPLES})
    assert admin.tally.answered(AUDIT)[200] >= EXAMPLES // 2
