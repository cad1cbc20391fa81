"""The whole lifecycle through HTTP: conceal -> show -> reveal -> receipt -> burn."""

from __future__ import annotations

import re

from tests.factories import V2, Client, burn, conceal, get, reveal

KEY = re.compile(r"^[0-9a-z]+$")


async def test_conceal_returns_both_generations_of_record(client: Client) -> None:
    pair = await conceal(client, "hello", ttl=3600)
    body = pair.body
    assert body["success"] is True
    assert body["custid"] == "anon"
    metadata, secret = body["record"]["metadata"], body["record"]["secret"]
    assert body["record"]["receipt"] == metadata
    assert KEY.match(metadata["key"])
    assert KEY.match(secret["key"])
    assert metadata["key"] != secret["key"]
    assert metadata["identifier"] == metadata["key"]
    assert secret["identifier"] == secret["key"]
    assert metadata["shortid"] == metadata["key"][:8]
    assert metadata["secret_shortkey"] == secret["key"][:6]
    assert (metadata["state"], secret["state"]) == ("new", "new")
    assert secret["secret_ttl"] == 3600
    assert metadata["metadata_ttl"] == 7200
    assert isinstance(metadata["created"], int)
    assert body["details"]["kind"] == "conceal"
    assert "share_url" not in metadata


async def test_reveal_once_then_unknown(client: Client) -> None:
    pair = await conceal(client, "hello")
    status, body = await reveal(client, pair.secret_key)
    assert status == 200
    assert body["record"]["secret_value"] == "hello"
    assert body["record"]["state"] == "received"
    assert body["details"]["show_secret"] is True
    for attempt in (reveal(client, pair.secret_key), get(client, f"/secret/{pair.secret_key}")):
        status, body = await attempt
        assert status == 404
        assert body["message"] == "Unknown secret"
        assert body["secret_key"] == pair.secret_key


async def test_receipt_after_reveal(client: Client) -> None:
    pair = await conceal(client, "hello", ttl=3600)
    await reveal(client, pair.secret_key)
    status, body = await get(client, f"/private/{pair.receipt_key}")
    assert status == 200
    record = body["record"]
    assert record["state"] == "received"
    assert record["is_received"] is True
    assert record["is_destroyed"] is True
    assert isinstance(record["received"], int)
    assert "secret_key" not in record
    assert record["share_path"] == "secret/"


async def test_burn(client: Client) -> None:
    pair = await conceal(client, "hello")
    status, body = await burn(client, pair.receipt_key)
    assert status == 200
    assert body["success"] is True
    assert body["record"]["state"] == "burned"
    assert body["record"]["is_burned"] is True
    assert body["details"]["title"] == "Secret burned"
    status, _ = await get(client, f"/secret/{pair.secret_key}")
    assert status == 404
    status, body = await get(client, f"/private/{pair.receipt_key}")
    assert body["record"]["state"] == "burned"
    response = await client.get(f"{V2}/status")
    assert response.status == 200


async def test_responses_are_never_cached_or_framed(client: Client) -> None:
    pair = await conceal(client, "hello")
    response = await client.post(f"{V2}/secret/{pair.secret_key}/reveal", json={"continue": True})
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    missing = await client.get(f"{V2}/secret/{pair.secret_key}")
    assert missing.status == 404
    assert missing.headers["Cache-Control"] == "no-store"
