"""Conceal and generate through HTTP: body shapes, TTL clamping, size, errors, generated values."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import asyncpg
import pytest

from tests.factories import V2, Client, conceal, generate, get, reveal

Body = dict[str, Any]
JSON = {"Content-Type": "application/json"}
WEEK = 604800
AMBIGUOUS = set("ilo1IO0")
ALNUM_12 = r"^[A-HJ-NP-Za-hjkmnp-z2-9]{12}$"
BASIC = "Basic " + base64.b64encode(b"nobody@example.com:bad").decode()
LIFETIMES = """
SELECT extract(epoch FROM s.expires_at - s.created_at)::int AS secret,
       extract(epoch FROM r.expires_at - r.created_at)::int AS receipt
  FROM secrets s JOIN receipts r ON r.id = s.receipt_id
"""


async def post(client: Client, path: str, **kwargs: Any) -> tuple[int, Body]:
    response = await client.post(f"{V2}{path}", **kwargs)
    return response.status, await response.json()


async def post_raw(client: Client, kind: str, text: str) -> tuple[int, Body]:
    return await post(client, f"/secret/{kind}", data=text, headers=JSON)


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    secrets = await db.fetchval("SELECT count(*) FROM secrets")
    receipts = await db.fetchval("SELECT count(*) FROM receipts")
    return secrets, receipts


def assert_error(body: Body, message: str | None) -> None:
    assert body["success"] is False
    assert isinstance(body["error_type"], str)
    assert isinstance(body["message"], str)
    assert body["error"] == body["message"] != ""
    if message is not None:
        assert body["message"] == message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"secret": {"secret": "abc", "ttl": 300}}},
        {"data": {"secret[secret]": "abc", "secret[ttl]": "300"}},
        {"params": {"secret[secret]": "abc", "secret[ttl]": "300"}},
        {"params": {"secret[ttl]": "600"}, "json": {"secret": {"secret": "abc", "ttl": 300}}},
    ],
    ids=["json", "form", "query", "body-over-query"],
)
async def test_conceal_body_shapes(client: Client, kwargs: Body) -> None:
    status, body = await post(client, "/secret/conceal", **kwargs)
    assert status == 200, body
    assert body["details"]["kind"] == "conceal"
    assert body["record"]["secret"]["secret_ttl"] == 300
    _, revealed = await reveal(client, body["record"]["secret"]["key"])
    assert revealed["record"]["secret_value"] == "abc"


TTLS: list[tuple[str | None, int]] = [
    ("1", 60),
    ("0", 60),
    ("-5", 60),
    ("-1e999", 60),
    ('"abc"', 60),
    ('"NaN"', 60),
]
TTLS += [("[300]", 60), ('"300"', 300), ("3600.7", 3600), ("99999999", WEEK), ("1e999", WEEK)]
TTLS += [("1" + "0" * 400, WEEK), ("null", WEEK), (None, WEEK)]


@pytest.mark.parametrize(("ttl", "expected"), TTLS)
async def test_ttl_is_clamped_never_rejected(
    client: Client, db: asyncpg.Connection, ttl: str | None, expected: int
) -> None:
    extra = "" if ttl is None else f',"ttl":{ttl}'
    status, body = await post_raw(client, "conceal", '{"secret":{"secret":"x"' + extra + "}}")
    assert status == 200, body
    assert body["record"]["secret"]["secret_ttl"] == expected
    assert body["record"]["metadata"]["metadata_ttl"] == 2 * expected
    rows = await db.fetch(LIFETIMES)
    assert [(row["secret"], row["receipt"]) for row in rows] == [(expected, 2 * expected)]


@pytest.mark.parametrize("secret", ["a" * 10000, "é" * 5000, "€" * 3333 + "a"])
async def test_size_up_to_limit_accepted(client: Client, secret: str) -> None:
    pair = await conceal(client, secret)
    _, revealed = await reveal(client, pair.secret_key)
    assert revealed["record"]["secret_value"] == secret


# Each is over 10000 UTF-8 bytes; all but the first are under 10000 characters.
@pytest.mark.parametrize("secret", ["a" * 10001, "é" * 5001, "€" * 3334, "😀" * 2501])
async def test_size_over_limit_rejected(
    client: Client, db: asyncpg.Connection, secret: str
) -> None:
    status, body = await post(client, "/secret/conceal", json={"secret": {"secret": secret}})
    assert status == 422
    assert_error(body, None)
    assert "10000" in body["message"]
    assert await counts(db) == (0, 0)


NOTHING = "You did not provide anything to share"
NO_EMAIL = "An account is required to send emails."
SHORT = "Passphrase must be at least 8 characters long"
LONG = "Passphrase must be no more than 128 characters long"


@pytest.mark.parametrize(
    ("kind", "text", "status", "message"),
    [
        ("conceal", "{}", 422, NOTHING),
        ("conceal", '{"secret":{}}', 422, NOTHING),
        ("conceal", '{"secret":{"secret":""}}', 422, NOTHING),
        ("conceal", '{"secret":{"secret":"","ttl":300}}', 422, NOTHING),
        ("conceal", '{"secret":"x","ttl":300}', 422, "Incorrect payload format"),
        ("generate", '{"secret":"x"}', 422, "Incorrect payload format"),
        ("conceal", "{not json", 400, "Failed to parse body as JSON"),
        ("generate", "{not json", 400, "Failed to parse body as JSON"),
        ("conceal", "[1, 2]", 400, None),
        ("conceal", '"x"', 400, None),
        ("conceal", '{"secret":{"secret":"x","recipient":"a@example.com"}}', 422, NO_EMAIL),
        ("conceal", '{"secret":{"secret":"x","recipient":["a@example.com"]}}', 422, NO_EMAIL),
        ("generate", '{"secret":{"recipient":"a@example.com"}}', 422, NO_EMAIL),
        ("conceal", '{"secret":{"secret":"x","passphrase":"abc"}}', 422, SHORT),
        ("conceal", '{"secret":{"secret":"x","passphrase":"1234567"}}', 422, SHORT),
        ("generate", '{"secret":{"passphrase":"abc"}}', 422, SHORT),
        ("conceal", '{"secret":{"secret":"x","passphrase":"' + "p" * 129 + '"}}', 422, LONG),
    ],
)
async def test_create_errors(
    client: Client, db: asyncpg.Connection, kind: str, text: str, status: int, message: str | None
) -> None:
    got, body = await post_raw(client, kind, text)
    assert got == status, body
    assert_error(body, message)
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize("passphrase", ["p" * 8, "p" * 128])
async def test_passphrase_length_bounds_accepted(client: Client, passphrase: str) -> None:
    pair = await conceal(client, "x", passphrase=passphrase)
    assert pair.body["record"]["secret"]["has_passphrase"] is True


@pytest.mark.parametrize("kind", ["conceal", "generate"])
@pytest.mark.parametrize(
    "authorization", [BASIC, "Bearer abc", "garbage"], ids=["basic", "bearer", "garbage"]
)
async def test_any_credentials_are_refused(
    client: Client, db: asyncpg.Connection, kind: str, authorization: str
) -> None:
    headers = {"Authorization": authorization}
    response = await client.post(
        f"{V2}/secret/{kind}", json={"secret": {"secret": "x"}}, headers=headers
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert_error(await response.json(), "Not authorized")
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": json.dumps({"secret": {"secret": "a" * 300_000}}), "headers": JSON},
        {"data": {"secret[secret]": "a" * 300_000}},
    ],
    ids=["json", "form"],
)
async def test_body_over_limit_is_413(client: Client, db: asyncpg.Connection, kwargs: Body) -> None:
    status, body = await post(client, "/secret/conceal", **kwargs)
    assert status == 413
    assert_error(body, None)
    assert await counts(db) == (0, 0)


def assert_default_password(value: str) -> None:
    assert len(value) == 12
    assert not AMBIGUOUS & set(value)
    assert any(c.isupper() for c in value)
    assert any(c.islower() for c in value)
    assert any(c.isdigit() for c in value)


@pytest.mark.parametrize("text", ['{"secret":{}}', "{}"])
async def test_generate_shows_value_once_on_receipt(client: Client, text: str) -> None:
    status, created = await post_raw(client, "generate", text)
    assert status == 200, created
    assert created["details"]["kind"] == "generate"
    assert created["record"]["secret"]["state"] == "new"
    receipt_key = created["record"]["metadata"]["key"]
    _, first = await get(client, f"/private/{receipt_key}")
    value = first["details"]["secret_value"]
    assert isinstance(value, str)
    assert first["details"]["can_decrypt"] is True
    assert_default_password(value)
    serialized = json.dumps(created)
    assert value not in serialized
    assert "secret_value" not in serialized
    _, second = await get(client, f"/private/{receipt_key}")
    assert second["details"]["secret_value"] is None


NUMBERS_ONLY = {"uppercase": False, "lowercase": False, "numbers": True, "symbols": False}
FORM_NUMBERS = {f"secret[character_sets][{k}]": str(v).lower() for k, v in NUMBERS_ONLY.items()}


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"json": {"secret": {"length": 20, "character_sets": NUMBERS_ONLY}}}, r"^[2-9]{20}$"),
        ({"data": {"secret[length]": "16", **FORM_NUMBERS}}, r"^[2-9]{16}$"),
        ({"json": {"secret": {"character_sets": {"symbols": False}}}}, ALNUM_12),
        ({"data": {"secret[character_sets][symbols]": "false"}}, ALNUM_12),
        ({"json": {"secret": {"length": 128}}}, r"^\S{128}$"),
    ],
    ids=["json-numbers", "form-numbers", "json-no-symbols", "form-no-symbols", "length-128"],
)
async def test_generate_options(client: Client, kwargs: Body, pattern: str) -> None:
    status, created = await post(client, "/secret/generate", **kwargs)
    assert status == 200, created
    _, receipt = await get(client, f"/private/{created['record']['metadata']['key']}")
    assert re.match(pattern, receipt["details"]["secret_value"])


@pytest.mark.parametrize("length", [0, -5, 129, "abc"])
async def test_generate_bad_length(client: Client, db: asyncpg.Connection, length: object) -> None:
    status, body = await post(client, "/secret/generate", json={"secret": {"length": length}})
    assert status == 422
    assert_error(body, None)
    assert await counts(db) == (0, 0)


async def test_generate_with_passphrase_never_shows_value(client: Client) -> None:
    pair = await generate(client, passphrase="correct-horse-1")
    for _ in range(2):
        _, receipt = await get(client, f"/private/{pair.receipt_key}")
        assert receipt["details"]["secret_value"] is None
        assert receipt["details"]["can_decrypt"] is False
    _, revealed = await reveal(client, pair.secret_key, passphrase="correct-horse-1")
    assert len(revealed["record"]["secret_value"]) == 12


async def test_reveal_returns_the_value_the_receipt_showed(client: Client) -> None:
    pair = await generate(client)
    _, receipt = await get(client, f"/private/{pair.receipt_key}")
    status, revealed = await reveal(client, pair.secret_key)
    assert status == 200
    assert revealed["record"]["secret_value"] == receipt["details"]["secret_value"]


async def test_conceal_value_never_on_receipt(client: Client) -> None:
    pair = await conceal(client, "hello")
    _, receipt = await get(client, f"/private/{pair.receipt_key}")
    assert receipt["details"]["secret_value"] is None


@pytest.mark.parametrize(("age", "shown"), [(30, True), (61, False), (3600, False)])
async def test_generated_value_window(
    client: Client, db: asyncpg.Connection, age: int, shown: bool
) -> None:
    pair = await generate(client)
    await db.execute(
        "UPDATE receipts SET created_at = created_at - make_interval(secs => $1)", float(age)
    )
    _, receipt = await get(client, f"/private/{pair.receipt_key}")
    assert receipt["record"]["state"] == "new"
    assert (receipt["details"]["secret_value"] is not None) is shown
