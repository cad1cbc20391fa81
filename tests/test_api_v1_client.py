"""A published v1 client library from PyPI (`onetimesecret`) against the running service."""

from __future__ import annotations

import asyncio
import base64

import pytest
from onetimesecret import OneTimeSecretCli, OneTimeSecretError

from app.core.accounts import add_customer
from app.keys import SERVICES
from tests.factories import Client


def _base(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_create_link_then_reveal(client: Client) -> None:
    cli = OneTimeSecretCli(url=_base(client))
    # The library is synchronous (requests): run it beside the event loop serving it.
    link = await asyncio.to_thread(cli.create_link, "from the PyPI client", 300)
    assert link.startswith(f"{_base(client)}/secret/")
    key = link.rsplit("/", 1)[1]
    response = await client.post(f"/api/v1/secret/{key}")
    assert (await response.json())["value"] == "from the PyPI client"


async def test_the_library_reports_our_errors(client: Client) -> None:
    cli = OneTimeSecretCli(url=_base(client))
    with pytest.raises(OneTimeSecretError, match="You did not provide anything to share"):
        await asyncio.to_thread(cli.create_link, "", 300)


async def test_the_library_authenticates(client: Client) -> None:
    cli = OneTimeSecretCli(user="nobody@example.com", key="not-a-token", url=_base(client))
    with pytest.raises(OneTimeSecretError, match="Not authorized"):
        await asyncio.to_thread(cli.create_link, "x", 300)


async def test_the_library_creates_as_an_account(client: Client) -> None:
    token = await add_customer(client.app[SERVICES], "lib@example.com", "basic")
    cli = OneTimeSecretCli(user="lib@example.com", key=token, url=_base(client))
    link = await asyncio.to_thread(cli.create_link, "owned", 300)
    credentials = base64.b64encode(f"lib@example.com:{token}".encode()).decode()
    response = await client.get(
        "/api/v1/private/recent", headers={"Authorization": f"Basic {credentials}"}
    )
    listed = await response.json()
    assert [entry["custid"] for entry in listed] == ["lib@example.com"]
    key = link.rsplit("/", 1)[1]
    revealed = await client.post(f"/api/v1/secret/{key}")
    assert (await revealed.json())["value"] == "owned"
