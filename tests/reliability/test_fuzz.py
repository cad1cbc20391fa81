"""Schemathesis against the real service over HTTP: every operation of the served OpenAPI
document (v2 and v1), every check, every phase (examples, coverage, fuzzing, stateful),
100 generated examples per operation that takes input. Expected: no 5xx, no failed check.

Reproduce or explore: OTS_FUZZ_SEED=<n> pytest tests/reliability/test_fuzz.py -s (the
seed, the figures and schemathesis's own report are printed)."""

from __future__ import annotations

import asyncio
import json
import os
import re
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
from tests.factories import TEST_KEYS
from tests.processes import clean_env, start_server, stop, wait_ready
from tests.reliability.conftest import UNLIMITED
from tests.reliability.figures import publish

EXAMPLES = 100
SEED = os.environ.get("OTS_FUZZ_SEED", "1")
BOUND = 270.0  # seconds for the schemathesis run: 80 to 150 s on 2 cores shared with others
EMAIL = "fuzz@example.com"

# Every check is on. Each exception is one check on named operations, and says why.
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
"""


@dataclass
class Tally:
    """What the run's events say: cases per operation and phase, and response statuses."""

    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failed_checks: list[str] = field(default_factory=list)

    def per_operation(self, phase: str) -> Counter[str]:
        return Counter({op: n for (op, seen), n in self.cases.items() if seen == phase})


@pytest.fixture(scope="module")
def service(server_url: str) -> Iterator[tuple[str, str]]:
    """The service in its own process on a throwaway database, rate limits lifted, and an
    account's credentials (recipients need one, and /recent answers accounts only)."""
    limits = ",".join(f"{event}={count}" for event, count in UNLIMITED.per_event)
    with throwaway_database(server_url, "fuzz") as url:
        token = _add_account(url)
        # WARNING: the access log would fill the unread pipe and stall the server.
        base, proc = start_server(url, OTS_RATE_LIMITS=limits, OTS_LOG_LEVEL="WARNING")
        try:
            asyncio.run(wait_ready(base))
            yield base, f"{EMAIL}:{token}"
        finally:
            logged = stop(proc)
            print(logged[-4000:])
            assert "Traceback" not in logged


def _add_account(database_url: str) -> str:
    result = subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "app", "customers", "add", EMAIL],
        env=clean_env(DATABASE_URL=database_url, OTS_KEYS=TEST_KEYS),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    found = re.fullmatch(r"token: (\S+)", result.stdout.splitlines()[-1])
    assert found is not None, result.stdout
    return found.group(1)


def _schemathesis(base: str, credentials: str, out: Path) -> subprocess.CompletedProcess[str]:
    (out / "schemathesis.toml").write_text(CONFIG, encoding="utf-8")
    command = [
        *(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(out / "schemathesis.toml"),
        ),
        *("run", f"{base}/api/v2/openapi.json", "--auth", credentials),
        *("--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES)),
        *("--seed", SEED, "--workers", "2", "--request-timeout", "10"),
        *("--no-color", "--warnings", "off"),
        *("--report", "json,ndjson", "--report-dir", str(out)),
    ]
    # In `out`, so that schemathesis's cache directory does not land in the checkout.
    return subprocess.run(  # noqa: S603  # our own interpreter and schemathesis
        command, cwd=out, capture_output=True, text=True, timeout=BOUND, check=False
    )


def _tally(events: Path) -> Tally:
    tally = Tally()
    for line in events.read_text(encoding="utf-8").splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished and "cases" in (finished.get("recorder") or {}):
            _count(tally, finished["phase"], finished["recorder"])
    return tally


def _count(tally: Tally, phase: str, recorder: dict[str, Any]) -> None:
    for case in recorder["cases"].values():
        tally.cases[(f"{case['value']['method']} {case['value']['path']}", phase)] += 1
    for interaction in recorder["interactions"].values():
        if interaction.get("response"):
            tally.statuses[interaction["response"]["status_code"]] += 1
    for checks in recorder["checks"].values():
        tally.failed_checks += [c["name"] for c in checks if c["status"] != "success"]


async def _inputs(base: str) -> dict[str, bool]:
    """Each operation of the served document, and whether it takes any input."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/api/v2/openapi.json") as r:
        document = await r.json()
    return {
        f"{method.upper()} {path}": bool(item.get("parameters") or "requestBody" in op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }


def test_schemathesis_finds_no_5xx_and_no_violation(
    service: tuple[str, str], tmp_path: Path
) -> None:
    run = _schemathesis(*service, tmp_path)
    print(run.stdout[-6000:], run.stderr[-2000:])
    (summary,) = (json.loads(p.read_text()) for p in tmp_path.glob("json-*.json"))
    tally = _tally(next(tmp_path.glob("ndjson-*.ndjson")))
    inputs = asyncio.run(_inputs(service[0]))
    fuzzed = tally.per_operation("fuzzing")
    server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
    publish(
        "fuzz",
        operations=summary["operations"]["tested"],
        operations_with_input=sum(inputs.values()),
        fewest_examples_with_input=min(
            (n for op, n in fuzzed.items() if inputs.get(op)), default=0
        ),
        cases=summary["test_cases"]["generated"],
        responses=sum(tally.statuses.values()),
        server_errors=server_errors,
        violations=len(tally.failed_checks),
        seed=SEED,
        seconds=round(summary["running_time"]),
    )
    assert (server_errors, tally.failed_checks, summary["failures"]) == (0, [], [])
    assert (summary["errors"], summary["test_cases"]["errored"], run.returncode) == ([], 0, 0)
    assert summary["phases"]["stateful"]["status"] == "success"
    assert summary["operations"]["tested"] == len(inputs) == len(fuzzed)
    # An operation that takes no input has a single request to send.
    short = {op: n for op, n in fuzzed.items() if n < (EXAMPLES if inputs[op] else 1)}
    assert short == {}
