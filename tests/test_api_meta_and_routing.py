"""Meta endpoints, HEAD, trailing slashes, /receipt aliases, unknown routes, methods and keys."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.factories import V2, Client, burn, conceal, generate, get, reveal

Body = dict[str, Any]
RECEIPT_ROW = "SELECT state, updated_at, value_claimable FROM receipts"


async def request(client: Client, method: str, path: str, **kwargs: Any) -> tuple[int, Body]:
    response = await client.request(method, f"{V2}{path}", **kwargs)
    return response.status, await response.json()


def assert_error(body: Body, status_text: str) -> None:
    assert body["success"] is False
    assert body["error"] == body["message"] == status_text
    assert isinstance(body["error_type"], str)


async def test_status_get_and_head(client: Client) -> None:
    status, body = await get(client, "/status")
    assert status == 200
    assert (body["status"], body["locale"]) == ("nominal", "en")
    response = await client.head(f"{V2}/status")
    assert response.status == 200
    assert await response.read() == b""


async def test_version_is_public(client: Client) -> None:
    status, body = await get(client, "/version")
    assert status == 200
    version = body["version"]
    assert isinstance(version, list)
    assert len(version) == 3
    assert all(isinstance(part, str) and part.isdigit() for part in version)
    assert isinstance(body["locale"], str)


async def test_supported_locales(client: Client) -> None:
    status, body = await get(client, "/supported-locales")
    assert status == 200
    assert isinstance(body["locales"], list)
    assert body["default_locale"] in body["locales"]
    assert isinstance(body["locale"], str)


@pytest.mark.parametrize("path", ["/status", "/version", "/supported-locales"])
async def test_meta_head_and_trailing_slash(client: Client, path: str) -> None:
    assert (await client.head(f"{V2}{path}")).status == 200
    slash_status, slash_body = await get(client, f"{path}/")
    assert slash_status == 200
    assert slash_body == (await get(client, path))[1]


async def test_trailing_slash_on_create_read_reveal_and_burn(client: Client) -> None:
    status, created = await request(
        client, "POST", "/secret/conceal/", json={"secret": {"secret": "hello"}}
    )
    assert status == 200, created
    share, receipt = created["record"]["secret"]["key"], created["record"]["metadata"]["key"]
    assert (await get(client, f"/secret/{share}/"))[1]["record"]["key"] == share
    assert (await get(client, f"/private/{receipt}/"))[1]["record"]["key"] == receipt
    assert (await get(client, f"/receipt/{receipt}/"))[1]["record"]["key"] == receipt
    status, revealed = await request(
        client, "POST", f"/secret/{share}/reveal/", json={"continue": True}
    )
    assert (status, revealed["record"]["secret_value"]) == (200, "hello")
    status, burned = await request(
        client, "POST", f"/private/{receipt}/burn/", json={"continue": True}
    )
    assert status == 200
    assert burned["record"]["state"] == "received"


async def test_head_on_secret_and_receipt_changes_nothing(
    client: Client, db: asyncpg.Connection
) -> None:
    pair = await conceal(client, "hello")
    before = await db.fetchrow(RECEIPT_ROW)
    for path in (f"/secret/{pair.secret_key}", f"/private/{pair.receipt_key}"):
        response = await client.head(f"{V2}{path}")
        assert response.status == 200
        assert await response.read() == b""
    assert await db.fetchrow(RECEIPT_ROW) == before
    assert await db.fetchval("SELECT count(*) FROM secrets") == 1
    assert (await reveal(client, pair.secret_key))[1]["record"]["secret_value"] == "hello"


async def test_head_on_receipt_keeps_generated_value_for_the_creator(client: Client) -> None:
    pair = await generate(client)
    assert (await client.head(f"{V2}/private/{pair.receipt_key}")).status == 200
    _, receipt = await get(client, f"/private/{pair.receipt_key}")
    assert isinstance(receipt["details"]["secret_value"], str)


async def test_receipt_alias_reads_like_private(client: Client) -> None:
    pair = await conceal(client, "hello")
    status, via_receipt = await get(client, f"/receipt/{pair.receipt_key}")
    assert status == 200
    assert via_receipt == (await get(client, f"/private/{pair.receipt_key}"))[1]
    assert via_receipt["record"]["secret_key"] == pair.secret_key


async def test_receipt_alias_burns_like_private(client: Client) -> None:
    pair = await conceal(client, "hello")
    status, body = await request(client, "POST", f"/receipt/{pair.receipt_key}/burn", json={})
    assert (status, body["success"]) == (200, False)
    status, body = await request(
        client, "POST", f"/receipt/{pair.receipt_key}/burn", json={"continue": True}
    )
    assert (status, body["success"], body["record"]["state"]) == (200, True, "burned")
    assert (await get(client, f"/private/{pair.receipt_key}"))[1]["record"]["state"] == "burned"
    assert (await get(client, f"/secret/{pair.secret_key}"))[0] == 404


@pytest.mark.parametrize(
    ("method", "path"),
    # Outside /api a person is browsing: /nope is an HTML page there (tests/test_pages.py).
    [("GET", "/api/v2/nope"), ("GET", "/api/nope"), ("POST", "/api/v2/secret/a/b/c")],
)
async def test_unknown_route_is_json_404(client: Client, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status == 404
    assert_error(await response.json(), "Not Found")


async def test_get_on_a_post_only_path_is_a_key_lookup(client: Client) -> None:
    """`GET /secret/conceal` is `GET /secret/{key}` with key "conceal", as upstream routes it."""
    status, body = await request(client, "GET", "/secret/conceal")
    assert (status, body["message"], body["secret_key"]) == (404, "Unknown secret", "conceal")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/secret/conceal", "POST"),
        ("DELETE", "/status", "GET"),
        ("GET", "/private/abc123/burn", "POST"),
    ],
)
async def test_wrong_method_is_json_405(client: Client, method: str, path: str, allow: str) -> None:
    response = await client.request(method, f"{V2}{path}")
    assert response.status == 405
    assert allow in response.headers["Allow"]
    assert_error(await response.json(), "Method Not Allowed")


@pytest.mark.parametrize("key", ["doesnotexist123", "0" * 50, "NotAKey", "bad-key_1", "key~1"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/secret/{}"),
        ("POST", "/secret/{}/reveal"),
        ("GET", "/private/{}"),
        ("GET", "/receipt/{}"),
        ("POST", "/private/{}/burn"),
    ],
)
async def test_unknown_key_is_404(client: Client, method: str, path: str, key: str) -> None:
    status, body = await request(client, method, path.format(key), json={"continue": True})
    assert status == 404
    assert body["message"] == "Unknown secret"
    assert body["secret_key"] == key
    assert body["success"] is False


async def test_keys_do_not_cross_over(client: Client) -> None:
    pair = await conceal(client, "hello")
    assert (await get(client, f"/secret/{pair.receipt_key}"))[0] == 404
    assert (await get(client, f"/private/{pair.secret_key}"))[0] == 404
    assert (await burn(client, pair.secret_key))[0] == 404


async def test_sess_cookie_is_ignored(client: Client) -> None:
    headers = {"Cookie": "sess=0123456789abcdef; shrimp=xyz"}
    status, body = await request(
        client, "POST", "/secret/conceal", json={"secret": {"secret": "hi"}}, headers=headers
    )
    assert status == 200, body
    assert body["custid"] == "anon"
    key = body["record"]["secret"]["key"]
    status, revealed = await request(
        client, "POST", f"/secret/{key}/reveal", json={"continue": True}, headers=headers
    )
    assert (status, revealed["record"]["secret_value"]) == (200, "hi")


@pytest.mark.parametrize("path", ["/private/recent", "/private/recent/", "/receipt/recent"])
async def test_recent_needs_an_account(client: Client, path: str) -> None:
    response = await client.get(f"{V2}{path}")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    body = await response.json()
    assert_error(body, "Not authorized")
    assert "secret_key" not in body
