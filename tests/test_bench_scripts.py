"""The benchmark's wrk scripts against the real service: a script that stops following
the service's responses measures something else without a word (the lifecycle ran
conceals only from 7f8b0e2, when bodies turned compact, until this test). wrk is a Debian
package: missing, these tests skip, except when OTS_REQUIRE_WRK=1 (CI), where they fail."""

from __future__ import annotations

import asyncio
import os
import shutil

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request
from pytest_aiohttp.plugin import AiohttpClient

from app.config import DEFAULT_RATE_LIMITS, RateLimits, Settings
from app.server import create_app
from bench import load
from bench import workloads as w
from bench.servers import HUGE_LIMIT
from tests.conftest import make_settings

CONNECTIONS = 4
SECONDS = 2
WAIT = 30  # wrk's run, its start and its summary

Client = TestClient[Request, Application]


@pytest.fixture
async def unlimited(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> Client:
    """The service as the bench runs it: no rate limit in the way of a load from one
    address (bench/servers.py)."""
    limits = RateLimits(per_event=tuple((event, HUGE_LIMIT) for event, _ in DEFAULT_RATE_LIMITS))
    return await aiohttp_client(create_app(make_settings(settings, rate_limits=limits)))


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        if os.environ.get("OTS_REQUIRE_WRK") == "1":
            pytest.fail("wrk is required here (OTS_REQUIRE_WRK=1): apt-get install wrk")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    return path


async def run_wrk(client: Client, work: load.Workload) -> dict[str, float]:
    """wrk with `work`'s script against the test server, in a process of its own while
    this loop serves it."""
    url = f"http://{client.server.host}:{client.server.port}{work.path}"
    proc = await asyncio.create_subprocess_exec(
        wrk_path(),
        *("-t", "1", "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "-s", f"{work.script}.lua"),
        url,
        cwd=load.LUA,
        env={**os.environ, "BENCH_THREADS": "1", **work.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, err.decode()[-2000:]
    return load.summary(out.decode())


async def test_lifecycle_script_follows_the_service(unlimited: Client) -> None:
    s = await run_wrk(unlimited, w.lifecycle())
    requests, finished = int(s["requests"]), int(s["lifecycles_finished"])
    assert s["status_errors"] == 0
    assert finished > 10
    # Three requests a lifecycle; those still open when wrk stopped are at most a
    # lifecycle a connection.
    assert requests - 3 * finished <= 3 * CONNECTIONS
    assert s["lifecycles_started"] - finished <= CONNECTIONS
    load.chained(requests, finished, 0, CONNECTIONS)  # the harness's own check agrees


def test_the_harness_refuses_a_lifecycle_that_lost_its_chain() -> None:
    with pytest.raises(RuntimeError, match="no longer follows"):
        load.chained(requests=3_000, finished=0, errors=0, concurrency=16)
    load.chained(requests=3_000 + 2 * 16, finished=1_000, errors=0, concurrency=16)
