"""The real command line: `serve` end to end in its own process, `migrate`, and refusals."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from alembic.script import ScriptDirectory

from app import migrate
from tests.conftest import throwaway_database
from tests.factories import TEST_KEYS
from tests.processes import BOUND, clean_env, start_server, stop, wait_ready


def _run(command: str, timeout: float = BOUND, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "app", command],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    base, proc = start_server(database_url, OTS_LOG_LEVEL="info")
    try:
        yield base, proc
    finally:
        stop(proc)


async def test_serve_end_to_end_then_sigterm(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    base, proc = served
    await wait_ready(base)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND)) as session:
        body = {"secret": {"secret": "over the wire", "ttl": 300}}
        async with session.post(f"{base}/api/v2/secret/conceal", json=body) as response:
            created = await response.json()
        key = created["record"]["secret"]["key"]
        reveal = f"{base}/api/v2/secret/{key}/reveal"
        async with session.post(reveal, json={"continue": True}) as response:
            assert (await response.json())["record"]["secret_value"] == "over the wire"
        async with session.post(reveal, json={"continue": True}) as response:
            assert response.status == 404
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=BOUND)
    assert proc.returncode == 0
    assert "/api/v2/secret/{key}/reveal" in output  # the access log names the route...
    assert key not in output  # ...never the key
    assert created["record"]["metadata"]["key"] not in output


def test_serve_refuses_to_start_without_a_key_ring(database_url: str) -> None:
    result = _run("serve", DATABASE_URL=database_url)
    assert result.returncode == 2
    assert "no key ring" in result.stderr


def test_serve_refuses_a_placeholder_key(database_url: str) -> None:
    placeholder = "idx:" + "A" * 43 + "= 1:" + "A" * 43 + "="
    result = _run("serve", DATABASE_URL=database_url, OTS_KEYS=placeholder)
    assert result.returncode == 2
    assert "placeholder" in result.stderr


def test_migrate_command(server_url: str) -> None:
    with throwaway_database(server_url, "cli", migrated=False) as url:
        result = _run("migrate", timeout=60, DATABASE_URL=url)
        assert result.returncode == 0, result.stderr
        version = asyncio.run(_scalar(url, "SELECT version_num FROM alembic_version"))
        head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
        assert head is not None
        assert version == head


async def _scalar(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def test_bad_log_level_is_a_configuration_error(database_url: str) -> None:
    result = _run("serve", DATABASE_URL=database_url, OTS_KEYS=TEST_KEYS, OTS_LOG_LEVEL="loud")
    assert result.returncode == 2
    assert "OTS_LOG_LEVEL must be one of" in result.stderr


def test_migrate_reads_the_url_from_a_mounted_file(server_url: str, tmp_path: Path) -> None:
    with throwaway_database(server_url, "cli_file", migrated=False) as url:
        (tmp_path / "url").write_text(url + "\n")
        result = _run("migrate", timeout=60, DATABASE_URL_FILE=str(tmp_path / "url"))
        assert result.returncode == 0, result.stderr
        assert asyncio.run(_scalar(url, "SELECT count(*) FROM alembic_version")) == 1
