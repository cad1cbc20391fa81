"""Webhooks never reach private addresses: URLs are checked when configured, names when
resolved (the connection uses the checked addresses), and a refusal dead-letters at once."""

from __future__ import annotations

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from app.config import DEFAULT_WEBHOOK_DENY, Settings
from app.core import accounts, webhooks
from app.keys import SERVICES
from app.notify.ssrf import Refused, check_configured, check_url
from app.notify.webhook import GuardedResolver
from app.server import create_app
from tests.factories import V2
from tests.notify_parts import Receiver, basic_auth, http_receiver, notify_settings, wait_until

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:7143/hook",
    "http://224.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, IPv4-mapped
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://localhost:7143/hook",
    "http://metadata.localhost/hook",
    "ftp://hooks.example.com/hook",
    "file:///etc/passwd",
    "gopher://hooks.example.com:70/",
    "https:///no-host",
    "https://user:pass@hooks.example.com/hook",
    # Hosts the HTTP client would normalise into a denied literal no resolver sees (found
    # in review: these reached a receiver on 127.0.0.1 and the metadata address).
    "http://\uff11\uff12\uff17.0.0.1/hook",  # fullwidth digits
    "http://127\u30020\u30020\u30021/hook",  # ideographic full stops
    "http://169\u3002254\u3002169\u3002254/latest/meta-data/",
    "http://\u246b7.0.0.1/hook",  # circled twelve
    # IPv6 forms that carry an IPv4 address, and deprecated site-local.
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "http://[64:ff9b:1::a9fe:a9fe]/hook",  # local-use NAT64
    "http://[fec0::1]/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_the_default_deny_list_refuses(url: str) -> None:
    with pytest.raises(Refused):
        check_configured(url, DEFAULT_WEBHOOK_DENY)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/ots?x=1", "http://93.184.216.34:8080/hook"]
)
def test_public_http_urls_pass(url: str) -> None:
    assert check_configured(url, DEFAULT_WEBHOOK_DENY) == url
    assert check_url(url, DEFAULT_WEBHOOK_DENY) == url


async def test_the_resolver_refuses_names_of_denied_addresses() -> None:
    """The check at connection time: `localhost` resolves (from /etc/hosts) to loopback."""
    resolver = GuardedResolver(DEFAULT_WEBHOOK_DENY)
    try:
        with pytest.raises(Refused, match="denied address"):
            await resolver.resolve("localhost", 80)
        open_resolver = GuardedResolver(())
        assert await open_resolver.resolve("localhost", 80)
        await open_resolver.close()
    finally:
        await resolver.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_delivery_to_a_denied_address_is_refused_and_dead_at_once(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection, host: str
) -> None:
    """A receiver really listening on 127.0.0.1, a URL configured while the deny-list
    allowed it: the worker with the default list never connects."""
    async with http_receiver(Receiver()) as receiver:
        client = await aiohttp_client(
            create_app(notify_settings(settings, webhook_deny=DEFAULT_WEBHOOK_DENY))
        )
        svc = client.app[SERVICES]
        token = await accounts.add_customer(svc, "a@example.com", "basic")
        url = receiver.url.replace("127.0.0.1", host)
        await webhooks.set_webhook(svc, "a@example.com", url, deny=())
        response = await client.post(
            f"{V2}/secret/conceal",
            json={"secret": {"secret": "x"}},
            headers=basic_auth("a@example.com", token),
        )
        assert response.status == 200
        await wait_until(lambda: _dead(db), "the refused notification is dead")
        assert receiver.requests == []
    row = await db.fetchrow("SELECT attempts, last_error FROM notifications")
    assert row is not None
    assert row["attempts"] == 1
    # An IP literal is checked before connecting; a name by the resolver, on what it found.
    why = "resolves to a denied address" if host == "localhost" else "in a denied network"
    assert why in row["last_error"]


async def _dead(db: asyncpg.Connection) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM notifications WHERE state = 'dead'"))
