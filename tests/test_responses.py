"""JSON bodies (app/http/responses.py): encoded by orjson, answered the way aiohttp's own
json_response answered them, and never a 500 for something only the json module takes."""

from __future__ import annotations

import json

from app.http.responses import dumps, json_response
from tests.factories import V2, Client, conceal, reveal


async def test_answers_carry_aiohttp_json_headers_and_utf8_text(client: Client) -> None:
    value = 'pässwörd ✓ 🔑 \u2028 "quoted" back\\slash'
    pair = await conceal(client, value)
    response = await client.post(f"{V2}/secret/{pair.secret_key}/reveal", json={"continue": True})
    raw = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(raw)
    assert json.loads(raw.decode("utf-8"))["record"]["secret_value"] == value


async def test_errors_are_json_with_the_same_headers(client: Client) -> None:
    status, body = await reveal(client, "nosuchkey0000000000000000000000")
    response = await client.get(f"{V2}/secret/nosuchkey0000000000000000000000")
    assert status == response.status == 404
    assert body["success"] is False
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_what_orjson_refuses_goes_through_the_json_module() -> None:
    lone_surrogate = {"text": "a\ud800b"}
    past_64_bits = {"n": 2**70}
    for data in (lone_surrogate, past_64_bits):
        assert json.loads(dumps(data)) == data
    response = json_response(lone_surrogate, status=422)
    assert response.status == 422
    assert response.body == b'{"text": "a\\ud800b"}'


def test_bodies_are_the_same_json_as_the_json_module_gives() -> None:
    data = {"success": True, "record": {"ttl": 3600, "recipients": [], "memo": None, "x": 1.5}}
    assert json.loads(dumps(data)) == json.loads(json.dumps(data)) == data
