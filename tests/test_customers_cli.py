"""The `customers` admin CLI in its own process, against the test database, and its tokens
used over HTTP."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import sys

import asyncpg

from tests.factories import TEST_KEYS, V2, Client

BOUND = 30.0
EMAIL = "a@example.com"


def _run(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTS_", "DATABASE_URL"))}
    return subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "app", "customers", *args],
        env={**env, "DATABASE_URL": database_url, "OTS_KEYS": TEST_KEYS},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )


async def cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m app customers ARGS` against `database_url`, with `stdin` as its input."""
    return await asyncio.to_thread(_run, database_url, *args, stdin=stdin)


def token_of(result: subprocess.CompletedProcess[str]) -> str:
    """The token from the LAST line of a successful run's output."""
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(r"token: (\S+)", result.stdout.splitlines()[-1])
    assert found is not None, result.stdout
    return found.group(1)


async def added(database_url: str, email: str = EMAIL, *options: str) -> str:
    return token_of(await cli(database_url, "add", email, *options))


async def conceal(client: Client, email: str, token: str, ttl: int = 300) -> tuple[int, int]:
    """(status, secret ttl or 0) of a conceal with these credentials."""
    auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
    response = await client.post(
        f"{V2}/secret/conceal",
        json={"secret": {"secret": "from the cli", "ttl": ttl}},
        headers={"Authorization": auth},
    )
    body = await response.json()
    if response.status != 200:
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        return response.status, 0
    assert body["custid"] == email
    return 200, body["record"]["secret"]["secret_ttl"]


async def test_add_prints_a_working_token_with_its_plan(client: Client, database_url: str) -> None:
    token = await added(database_url, EMAIL, "--plan", "identity")
    assert await conceal(client, EMAIL, token, ttl=99999999) == (200, 2592000)


async def test_add_defaults_to_basic(client: Client, database_url: str) -> None:
    token = await added(database_url, "B@Example.com")
    assert await conceal(client, "b@example.com", token, ttl=99999999) == (200, 1209600)


async def test_list_shows_email_plan_and_state(client: Client, database_url: str) -> None:
    await added(database_url, EMAIL, "--plan", "identity")
    await added(database_url, "b@example.com")
    assert (await cli(database_url, "disable", "b@example.com")).returncode == 0
    result = await cli(database_url, "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines() if "@" in line]
    assert rows == [[EMAIL, "identity", "active"], ["b@example.com", "basic", "disabled"]]


async def test_add_twice_fails(client: Client, database_url: str, db: asyncpg.Connection) -> None:
    token = await added(database_url)
    for email in (EMAIL, "A@EXAMPLE.COM"):
        result = await cli(database_url, "add", email)
        assert result.returncode == 1
        assert "token:" not in result.stdout
        assert result.stderr.startswith("error:")
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
    assert (await conceal(client, EMAIL, token))[0] == 200  # the first token still works


async def test_rotate_token(client: Client, database_url: str) -> None:
    old = await added(database_url)
    new = token_of(await cli(database_url, "rotate-token", EMAIL))
    assert new != old
    assert (await conceal(client, EMAIL, old))[0] == 401
    assert (await conceal(client, EMAIL, new))[0] == 200


async def test_disable(client: Client, database_url: str) -> None:
    token = await added(database_url)
    assert (await conceal(client, EMAIL, token))[0] == 200
    result = await cli(database_url, "disable", EMAIL)
    assert result.returncode == 0, result.stderr
    assert (await conceal(client, EMAIL, token))[0] == 401


async def test_unknown_account_fails(db: asyncpg.Connection, database_url: str) -> None:
    for action in ("disable", "rotate-token"):
        result = await cli(database_url, action, "nobody@example.com")
        assert result.returncode == 1
        assert result.stderr.startswith("error:")
        assert "token:" not in result.stdout


async def test_invalid_email_fails(db: asyncpg.Connection, database_url: str) -> None:
    result = await cli(database_url, "add", "not-an-email")
    assert result.returncode == 1
    assert result.stderr.startswith("error:")
    assert "token:" not in result.stdout
    assert await db.fetchval("SELECT count(*) FROM customers") == 0


async def test_unknown_plan_is_a_usage_error(db: asyncpg.Connection, database_url: str) -> None:
    result = await cli(database_url, "add", EMAIL, "--plan", "gold")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert await db.fetchval("SELECT count(*) FROM customers") == 0
