"""Links made ahead of a run (for reveals, each used once, and for the read mix), created
over HTTP through each system's own create, with an aiohttp client outside the server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp

PARALLEL = 32
VALUE = "db password: correct-horse-battery-staple 0123456789 abcdefghij"  # 64 bytes
PASSPHRASE = "correct horse battery staple"  # noqa: S105  # a fixed test phrase


def conceal_body(passphrase: bool = False) -> str:
    fields: dict[str, object] = {"secret": VALUE, "ttl": 3600}
    if passphrase:
        fields["passphrase"] = PASSPHRASE
    return json.dumps({"secret": fields})


def reveal_body(passphrase: bool = False) -> str:
    return json.dumps({"continue": True, **({"passphrase": PASSPHRASE} if passphrase else {})})


SNAPPASS_FORM = urlencode({"password": VALUE, "ttl": "hour"})


async def _many(count: int, one: Callable[[aiohttp.ClientSession], Awaitable[str]]) -> list[str]:
    slots = asyncio.Semaphore(PARALLEL)
    timeout = aiohttp.ClientTimeout(total=60)

    async def bounded(session: aiohttp.ClientSession) -> str:
        async with slots:
            return await one(session)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(bounded(session) for _ in range(count))))


def ours(base: str, count: int, passphrase: bool = False) -> list[tuple[str, str]]:
    """(share key, receipt key) of `count` new secrets."""
    body = conceal_body(passphrase)

    async def one(session: aiohttp.ClientSession) -> str:
        url = f"{base}/api/v2/secret/conceal"
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=body, headers=headers) as response:
            record = (await response.json())["record"]
        return f"{record['secret']['key']} {record['metadata']['key']}"

    return [_pair(line) for line in asyncio.run(_many(count, one))]


def snappass(base: str, count: int) -> list[str]:
    """The link paths of `count` new SnapPass secrets."""

    async def one(session: aiohttp.ClientSession) -> str:
        form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        async with session.post(f"{base}/", data=SNAPPASS_FORM, headers=form) as response:
            link: str = (await response.json())["link"]
        parts = urlsplit(link)
        return parts.path

    return asyncio.run(_many(count, one))


def _pair(line: str) -> tuple[str, str]:
    share, receipt = line.split()
    return share, receipt


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path
