"""The classic v1 API, driven the way the known clients drive it: form bodies, the query
string on POST, Basic auth; every error a 404 with a `message`."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import pytest

from app.core.accounts import add_customer
from app.keys import SERVICES
from tests.factories import Client, conceal, reveal

V1 = "/api/v1"
Body = dict[str, Any]


async def post(client: Client, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await client.post(f"{V1}{path}", **kwargs)
    return response.status, await response.json()


async def share(client: Client, **form: str) -> Body:
    status, body = await post(client, "/share", data=form)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


async def test_share_with_a_form_returns_the_classic_hash(client: Client) -> None:
    body = await share(client, secret="hello", ttl="3600")
    assert body["custid"] == "anon"
    assert isinstance(body["metadata_key"], str)
    assert isinstance(body["secret_key"], str)
    assert body["metadata_key"] != body["secret_key"]
    assert (body["ttl"], body["secret_ttl"], body["metadata_ttl"]) == (3600, 3600, 7200)
    assert body["state"] == "new"
    assert body["recipient"] == []
    assert body["share_domain"] == ""
    assert body["passphrase_required"] is False
    assert isinstance(body["created"], int)
    assert isinstance(body["updated"], int)


async def test_query_string_on_post_and_json_bodies(client: Client) -> None:
    status, body = await post(client, "/share?secret=from+the+query&ttl=600")
    assert (status, body["ttl"]) == (200, 600)
    status, revealed = await post(client, f"/secret/{body['secret_key']}")
    assert (status, revealed["value"]) == (200, "from the query")
    status, body = await post(client, "/share", json={"secret": "from json", "ttl": 300})
    assert (status, body["ttl"]) == (200, 300)


async def test_reveal_once_then_404(client: Client) -> None:
    body = await share(client, secret="hello")
    status, first = await post(client, f"/secret/{body['secret_key']}")
    assert status == 200
    assert first == {
        "value": "hello",
        "secret_key": body["secret_key"],
        "share_domain": "https://ots.example",
    }
    status, second = await post(client, f"/secret/{body['secret_key']}")
    assert (status, second) == (
        404,
        {"secret_key": body["secret_key"], "message": "Unknown secret"},
    )


async def test_generate_then_burn(client: Client) -> None:
    status, created = await post(client, "/generate", data={"ttl": "600"})
    assert status == 200
    assert len(created["value"]) == 12
    assert created["secret_ttl"] <= 600
    assert created["metadata_ttl"] <= 1200
    status, receipt = await post(client, f"/private/{created['metadata_key']}")
    assert status == 200
    assert "value" not in receipt  # shown once already, in the create response
    status, burned = await post(client, f"/private/{created['metadata_key']}/burn")
    assert status == 200
    assert burned["state"]["state"] == "burned"
    assert burned["secret_shortkey"] == created["secret_key"][:6]
    assert "secret_key" not in burned["state"]
    status, again = await post(client, f"/private/{created['metadata_key']}/burn")
    assert (status, again["message"]) == (404, "Unknown secret")


async def test_metadata_hash_and_aliases(client: Client) -> None:
    body = await share(client, secret="hello", ttl="3600")
    for method, path in (("GET", "/private/"), ("POST", "/private/"), ("GET", "/metadata/")):
        response = await client.request(method, f"{V1}{path}{body['metadata_key']}")
        receipt = await response.json()
        assert response.status == 200
        assert receipt["secret_key"] == body["secret_key"]
        assert 3590 <= receipt["secret_ttl"] <= 3600
        assert 7190 <= receipt["metadata_ttl"] <= 7200
        assert receipt["passphrase_required"] is False
    await post(client, f"/secret/{body['secret_key']}")
    status, receipt = await post(client, f"/private/{body['metadata_key']}")
    assert (status, receipt["state"]) == (200, "received")
    assert isinstance(receipt["received"], int)
    assert "secret_key" not in receipt
    assert "secret_ttl" not in receipt


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("/share", {}, "You did not provide anything to share"),
        ("/share", {"secret": ""}, "You did not provide anything to share"),
        ("/secret/doesnotexist123", {}, "Unknown secret"),
        ("/private/doesnotexist123", {}, "Unknown secret"),
        ("/private/doesnotexist123/burn", {}, "Unknown secret"),
        (
            "/share",
            {"secret": "x", "recipient": "a@example.com"},
            "An account is required to send emails.",
        ),
    ],
)
async def test_every_error_is_a_404_with_a_message(
    client: Client, db: asyncpg.Connection, path: str, form: dict[str, str], message: str
) -> None:
    status, body = await post(client, path, data=form)
    assert (status, body["message"]) == (404, message)
    assert await db.fetchval("SELECT count(*) FROM receipts") == 0


async def test_passphrases(client: Client) -> None:
    body = await share(client, secret="guarded", passphrase="correct-horse-1")
    assert body["passphrase_required"] is True
    status, wrong = await post(client, f"/secret/{body['secret_key']}", data={"passphrase": "no"})
    assert (status, wrong["message"]) == (404, "Unknown secret")
    status, burn = await post(
        client, f"/private/{body['metadata_key']}/burn", data={"passphrase": "nope-nope-1"}
    )
    assert (status, burn["message"]) == (404, "Double check that passphrase")
    status, right = await post(
        client, f"/secret/{body['secret_key']}", data={"passphrase": "correct-horse-1"}
    )
    assert (status, right["value"]) == (200, "guarded")


def _basic(user: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


async def test_accounts_with_basic_auth(client: Client) -> None:
    token = await add_customer(client.app[SERVICES], "v1@example.com", "basic")
    auth = _basic("v1@example.com", token)
    status, body = await post(client, "/share", data={"secret": "mine"}, headers=auth)
    assert (status, body["custid"]) == (200, "v1@example.com")
    response = await client.get(f"{V1}/private/recent", headers=auth)
    listed = await response.json()
    assert response.status == 200
    assert [entry["metadata_key"] for entry in listed] == [body["metadata_key"]]
    assert "secret_key" not in listed[0]
    assert (await client.get(f"{V1}/authcheck", headers=auth)).status == 200
    for path in ("/authcheck", "/private/recent"):
        response = await client.get(f"{V1}{path}")
        assert (response.status, (await response.json())["message"]) == (404, "Not authorized")
    status, body = await post(
        client, "/share", data={"secret": "x"}, headers=_basic("v1@example.com", "wrong")
    )
    assert (status, body["message"]) == (404, "Not authorized")


async def test_a_v1_secret_reads_in_v2_and_the_other_way_round(client: Client) -> None:
    from_v1 = await share(client, secret="made in v1")
    status, body = await reveal(client, from_v1["secret_key"])
    assert (status, body["record"]["secret_value"]) == (200, "made in v1")
    status, receipt = await post(client, f"/private/{from_v1['metadata_key']}")
    assert (status, receipt["state"]) == (200, "received")
    from_v2 = await conceal(client, "made in v2")
    status, revealed = await post(client, f"/secret/{from_v2.secret_key}")
    assert (status, revealed["value"]) == (200, "made in v2")
    response = await client.get(f"/api/v2/private/{from_v2.receipt_key}")
    assert (await response.json())["record"]["state"] == "received"


async def test_v1_goes_through_the_same_audit_trail(client: Client, db: asyncpg.Connection) -> None:
    body = await share(client, secret="audited")
    await post(client, f"/secret/{body['secret_key']}")
    events = await db.fetch(
        "SELECT event FROM audit_events WHERE request_id IN "
        "(SELECT request_id FROM audit_events ORDER BY id DESC LIMIT 2) ORDER BY id"
    )
    assert [e["event"] for e in events] == ["secret.created", "secret.revealed"]


async def test_status(client: Client) -> None:
    response = await client.get(f"{V1}/status")
    assert (response.status, await response.json()) == (200, {"status": "nominal", "locale": "en"})
    assert (await client.head(f"{V1}/status")).status == 200


async def test_generate_takes_bracketed_character_sets(client: Client) -> None:
    form = {
        "length": "16",
        "character_sets[uppercase]": "false",
        "character_sets[lowercase]": "false",
        "character_sets[symbols]": "false",
    }
    status, created = await post(client, "/generate", data=form)
    assert status == 200
    assert len(created["value"]) == 16
    assert created["value"].isdigit()
