"""The service as its own process, for the tests that need a real one (signals, logs,
several workers)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys

import aiohttp

from tests.factories import TEST_KEYS

BOUND = 20.0  # seconds: far above any start-up or drain the tests expect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any OTS_ or DATABASE_URL setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTS_", "DATABASE_URL"))}
    return {**env, **extra}


def start_server(database_url: str, *args: str, **env: str) -> tuple[str, subprocess.Popen[str]]:
    """`python -m app serve ARGS` on a free port; stdout and stderr merged."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "app", "serve", *args],
        env=clean_env(DATABASE_URL=database_url, OTS_KEYS=TEST_KEYS, OTS_PORT=str(port), **env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return f"http://127.0.0.1:{port}", proc


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the service did not start")


def stop(proc: subprocess.Popen[str]) -> str:
    """Kill whatever is still running after a test; returns what it printed."""
    if proc.poll() is None:
        proc.kill()
    output, _ = proc.communicate(timeout=BOUND)
    return output


def add_account(database_url: str, email: str, *options: str) -> str:
    """A customer account made by the CLI, as an operator would; returns its API token."""
    result = subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "app", "customers", "add", email, *options],
        env=clean_env(DATABASE_URL=database_url, OTS_KEYS=TEST_KEYS),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    found = re.fullmatch(r"token: (\S+)", result.stdout.splitlines()[-1])
    assert found is not None, result.stdout
    return found.group(1)
