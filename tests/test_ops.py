"""Running it for real: probes, metrics, JSON logs, draining on SIGTERM, several workers."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from pytest_aiohttp import AiohttpClient

from app import embedded, migrate
from app.config import DatabaseConfig, Settings
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import V2, Client, conceal, reveal
from tests.processes import BOUND, free_port, start_server, wait_ready


async def test_metrics_name_routes_never_keys(client: Client) -> None:
    pair = await conceal(client, "counted")
    await reveal(client, pair.secret_key)
    await client.get(f"{V2}/private/{pair.receipt_key}")
    response = await client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert re.search(
        r'ots_http_requests_total\{method="POST",route="/api/v2/secret/conceal",status="200"\} '
        r"[1-9]",
        text,
    )
    assert 'route="/api/v2/private/{key}"' in text
    assert re.search(r"ots_secrets_revealed_total [1-9]", text)
    assert "ots_db_pool_waiting" in text
    assert pair.secret_key not in text
    assert pair.receipt_key not in text


async def test_healthz_needs_no_database(aiohttp_client: AiohttpClient, settings: Settings) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    away = make_settings(settings, database=DatabaseConfig(url=url, connect_timeout=0.5))
    client = await aiohttp_client(create_app(away))
    assert (await client.get("/healthz")).status == 200
    started = time.monotonic()
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert ready.headers["Retry-After"]
    assert time.monotonic() - started < 3


@pytest.fixture
def own_postgres() -> Iterator[tuple[object, str]]:
    """A PostgreSQL of this test's own, since the test stops it."""
    with tempfile.TemporaryDirectory(prefix="ots-readyz-") as tmp:
        server = embedded.start(Path(tmp) / "pg")  # stop, not delete, when cleaned up
        try:
            url = embedded.database_url(server, "readyz")
            migrate.upgrade(url)
            yield server, url
        finally:
            embedded.start(Path(tmp) / "pg").cleanup()


async def test_readyz_follows_postgres_down_and_back(
    aiohttp_client: AiohttpClient, settings: Settings, own_postgres: tuple[object, str]
) -> None:
    server, url = own_postgres
    config = DatabaseConfig(url=url, connect_timeout=1.0, command_timeout=1.0)
    client = await aiohttp_client(create_app(make_settings(settings, database=config)))
    assert (await client.get("/readyz")).status == 200
    await asyncio.to_thread(server.cleanup)  # type: ignore[attr-defined]  # stops the server
    started = time.monotonic()
    assert (await client.get("/readyz")).status == 503
    assert time.monotonic() - started < settings.ready_timeout + 2
    assert (await client.get("/healthz")).status == 200
    await asyncio.to_thread(embedded.start, Path(url.split("host=")[1]))
    statuses = []
    for _ in range(40):
        statuses.append((await client.get("/readyz")).status)
        if statuses[-1] == 200:
            break
        await asyncio.sleep(0.25)
    assert statuses[-1] == 200  # recovered without restarting the service


async def test_json_logs_carry_request_ids_and_no_keys(database_url: str) -> None:
    base, proc = start_server(database_url, OTS_LOG_FORMAT="json")
    try:
        await wait_ready(base)
        async with aiohttp.ClientSession() as session:
            body = {"secret": {"secret": "logged?"}}
            headers = {"X-Request-ID": "trace-42"}
            async with session.post(f"{base}{V2}/secret/conceal", json=body, headers=headers) as r:
                key = (await r.json())["record"]["secret"]["key"]
            await session.get(f"{base}/readyz")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=BOUND)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("route") == "/api/v2/secret/conceal"]
    assert access
    assert access[0]["request_id"] == "trace-42"
    assert access[0]["level"] == "INFO"
    assert not [line for line in lines if line.get("route") == "/readyz"]  # DEBUG only
    assert key not in output


async def test_sigterm_drains_requests_in_flight(database_url: str) -> None:
    base, proc = start_server(database_url, OTS_SHUTDOWN_TIMEOUT="10")
    await wait_ready(base)
    results: list[tuple[float, str]] = []
    stop = time.monotonic() + 4

    async def steady(session: aiohttp.ClientSession) -> None:
        body = {"secret": {"secret": "drain", "passphrase": "correct-horse-1"}}
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                async with session.post(f"{base}{V2}/secret/conceal", json=body) as response:
                    outcome = str(response.status)
            except aiohttp.ClientError as exc:
                outcome = type(exc).__name__
            results.append((started, outcome))
            if outcome != "200":
                await asyncio.sleep(0.05)

    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        traffic = [asyncio.create_task(steady(session)) for _ in range(8)]
        await asyncio.sleep(1.5)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*traffic)
    proc.communicate(timeout=BOUND)
    assert proc.returncode == 0
    before = [outcome for started, outcome in results if started < signalled - 0.05]
    assert len(before) > 20
    assert set(before) == {"200"}


async def test_several_workers_share_one_port(database_url: str) -> None:
    base, proc = start_server(database_url, "--workers", "2")
    try:
        await wait_ready(base)
        workers = [
            child
            for child in psutil.Process(proc.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        async with aiohttp.ClientSession() as session:
            for _ in range(6):
                async with session.get(f"{base}{V2}/status") as response:
                    assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=BOUND)
    assert proc.returncode == 0
    gone, alive = psutil.wait_procs(workers, timeout=BOUND)
    assert (len(gone), alive) == (2, [])


async def test_metrics_count_each_request_once(client: Client) -> None:
    """The middleware's labelled metrics are looked up once and kept (app.metrics.child):
    the kept ones must still be the ones /metrics shows."""

    async def counted() -> tuple[float, float]:
        text = await (await client.get("/metrics")).text()
        route = 'route="/api/v2/secret/conceal"'
        requests = re.search(
            rf'ots_http_requests_total\{{method="POST",{route},status="200"\}} (\S+)', text
        )
        timed = re.search(rf"ots_http_request_duration_seconds_count\{{{route}\}} (\S+)", text)
        return (
            float(requests.group(1)) if requests else 0.0,
            float(timed.group(1)) if timed else 0.0,
        )

    before = await counted()
    for _ in range(3):
        await conceal(client, "counted")
    after = await counted()
    assert (after[0] - before[0], after[1] - before[1]) == (3.0, 3.0)
