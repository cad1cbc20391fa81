"""The OpenAPI document is valid, served, and true: real responses of v2 and v1 match its
schemas, and the requests sent here are valid under it."""

from __future__ import annotations

import base64
from typing import Any

import jsonschema
from openapi_spec_validator import validate

from app import crypto
from app.api.openapi import document
from app.config import DatabaseConfig, Settings
from app.core.accounts import add_customer
from app.keys import SERVICES
from tests.factories import TEST_KEYS, Client, conceal, generate

# As the `settings` fixture: the request schemas follow the deployment's host and limits.
SETTINGS = Settings(
    database=DatabaseConfig(url="postgresql:///unused"),
    keys=crypto.parse_keyring(TEST_KEYS),
    base_url="https://ots.example",
)
DOC = document(SETTINGS)
API = "/api"
EMAIL = "doc@example.com"


def inline(schema: Any) -> Any:
    """The schema with every local $ref replaced by what it points at."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return inline(DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
        return {key: inline(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [inline(item) for item in schema]
    return schema


def check(path: str, method: str, status: int, body: Any) -> None:
    responses = DOC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    schema = inline(responses[str(status)]["content"]["application/json"]["schema"])
    jsonschema.Draft202012Validator(schema).validate(body)


def request_is_valid(path: str, method: str, body: Any) -> bool:
    content = DOC["paths"][path][method]["requestBody"]["content"]
    (media,) = content.values()
    return jsonschema.Draft202012Validator(inline(media["schema"])).is_valid(body)


async def call(
    client: Client, method: str, path: str, template: str, *, valid: bool = True, **kwargs: Any
) -> Any:
    """The response must match the document; a JSON body sent must be `valid` under it
    (a form carries text only, which the schema's types describe)."""
    if "json" in kwargs:
        assert request_is_valid(template, method.lower(), kwargs["json"]) is valid
    response = await client.request(method, f"{API}{path}", **kwargs)
    body = await response.json()
    check(template, method.lower(), response.status, body)
    return body


def basic(custid: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{custid}:{token}".encode()).decode()}


def test_the_document_is_valid_openapi() -> None:
    validate(DOC)
    assert DOC["openapi"] == "3.1.0"
    operation_ids = [op["operationId"] for item in DOC["paths"].values() for op in ops(item)]
    assert len(operation_ids) == len(set(operation_ids))
    assert {path.split("/")[1] for path in DOC["paths"]} == {"v1", "v2"}


def ops(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for method, op in item.items() if method != "parameters"]


def test_it_follows_the_deployment() -> None:
    """The share domains and the passphrase rule are this service's own."""
    body = inline(DOC["components"]["schemas"]["ConcealBody"])["properties"]["secret"]
    fields = body["properties"]
    assert fields["share_domain"]["enum"] == ["", None, "ots.example"]
    text = fields["passphrase"]["anyOf"][0]
    assert (text["minLength"], text["maxLength"]) == (8, 128)


async def test_the_service_serves_it(client: Client, settings: Settings) -> None:
    response = await client.get(f"{API}/v2/openapi.json")
    assert await response.json() == document(settings) == DOC


async def test_lifecycle_responses_match(client: Client) -> None:
    conceal_body = {"secret": {"secret": "x", "ttl": 600, "passphrase": "correct-horse-1"}}
    created = await call(
        client, "POST", "/v2/secret/conceal", "/v2/secret/conceal", json=conceal_body
    )
    share, receipt = created["record"]["secret"]["key"], created["record"]["metadata"]["key"]
    await call(client, "GET", f"/v2/secret/{share}", "/v2/secret/{key}")
    reveal = f"/v2/secret/{share}/reveal"
    for passphrase in ("wrong-horse-1", "correct-horse-1", None):
        body = {"continue": True, "passphrase": passphrase}
        await call(client, "POST", reveal, "/v2/secret/{key}/reveal", json=body)
    await call(client, "GET", f"/v2/private/{receipt}", "/v2/private/{key}")
    await call(client, "GET", f"/v2/receipt/{receipt}", "/v2/receipt/{key}")
    generated = await generate(client)
    await call(client, "GET", f"/v2/private/{generated.receipt_key}", "/v2/private/{key}")
    burn = f"/v2/private/{generated.receipt_key}/burn"
    await call(client, "POST", burn, "/v2/private/{key}/burn", json={"continue": True})
    await call(
        client,
        "POST",
        "/v2/secret/generate",
        "/v2/secret/generate",
        json={"secret": {"length": 20}},
    )


async def test_errors_and_meta_responses_match(client: Client) -> None:
    empty: dict[str, Any] = {"secret": {}}
    await call(client, "POST", "/v2/secret/conceal", "/v2/secret/conceal", valid=False, json=empty)
    await call(
        client,
        "POST",
        "/v2/secret/conceal",
        "/v2/secret/conceal",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    await call(client, "GET", "/v2/private/recent", "/v2/private/recent")
    await call(client, "GET", "/v2/secret/unknownkey", "/v2/secret/{key}")
    # Upstream routes GET /secret/conceal to /secret/{key}: documented, and always a 404.
    await call(client, "GET", "/v2/secret/conceal", "/v2/secret/conceal")
    for path in ("/v2/status", "/v2/version", "/v2/supported-locales"):
        await call(client, "GET", path, path)


async def test_recent_matches(client: Client) -> None:
    token = await add_customer(client.app[SERVICES], EMAIL, "basic")
    auth = basic(EMAIL, token)
    await client.post(f"{API}/v2/secret/conceal", json={"secret": {"secret": "x"}}, headers=auth)
    await conceal(client, "anonymous")
    body = await call(client, "GET", "/v2/private/recent", "/v2/private/recent", headers=auth)
    assert body["count"] == 1


async def test_v1_lifecycle_responses_match(client: Client) -> None:
    form = {"secret": "hello", "ttl": "600", "passphrase": "correct-horse-1"}
    created = await call(client, "POST", "/v1/share", "/v1/share", data=form)
    share, metadata = created["secret_key"], created["metadata_key"]
    reveal = f"/v1/secret/{share}"
    for passphrase in ("wrong-horse-1", "correct-horse-1", "correct-horse-1"):
        await call(client, "POST", reveal, "/v1/secret/{key}", data={"passphrase": passphrase})
    for method, prefix in (("GET", "private"), ("POST", "private"), ("GET", "metadata")):
        await call(client, method, f"/v1/{prefix}/{metadata}", f"/v1/{prefix}/{{key}}")
    generated = await call(client, "POST", "/v1/generate", "/v1/generate", data={"length": "16"})
    burn = f"/v1/private/{generated['metadata_key']}/burn"
    for _ in range(2):  # then already gone: a 404
        await call(client, "POST", burn, "/v1/private/{key}/burn", data={})
    await call(client, "POST", "/v1/create", "/v1/create", data={"secret": "alias"})


async def test_v1_errors_and_meta_responses_match(client: Client) -> None:
    body = await call(client, "POST", "/v1/share", "/v1/share", data={"ttl": "60"})
    assert body == {"message": "You did not provide anything to share"}
    await call(client, "GET", "/v1/private/unknownkey", "/v1/private/{key}")
    await call(client, "POST", "/v1/metadata/unknownkey/burn", "/v1/metadata/{key}/burn")
    for path in ("/v1/authcheck", "/v1/private/recent"):  # anonymous: 404 Not authorized
        await call(client, "GET", path, path)
    await call(client, "POST", "/v1/private/recent", "/v1/private/recent")
    await call(client, "GET", "/v1/status", "/v1/status")


async def test_v1_account_responses_match(client: Client) -> None:
    token = await add_customer(client.app[SERVICES], EMAIL, "basic")
    auth = basic(EMAIL, token)
    form = {"secret": "to someone", "recipient": "someone@example.com"}
    await call(client, "POST", "/v1/share", "/v1/share", data=form, headers=auth)
    await call(client, "GET", "/v1/authcheck", "/v1/authcheck", headers=auth)
    for path in ("/v1/private/recent", "/v1/metadata/recent"):
        listed = await call(client, "GET", path, path, headers=auth)
        assert len(listed) == 1


async def test_numbers_are_read_as_the_document_says(client: Client) -> None:
    """An integer, 1e7 alike, counts as its text; a fraction is refused, not altered."""
    whole = {"secret": {"secret": 42, "passphrase": 1e7}}
    created = await call(client, "POST", "/v2/secret/conceal", "/v2/secret/conceal", json=whole)
    reveal = f"/v2/secret/{created['record']['secret']['key']}/reveal"
    body = {"continue": True, "passphrase": "10000000"}
    shown = await call(client, "POST", reveal, "/v2/secret/{key}/reveal", json=body)
    assert shown["record"]["secret_value"] == "42"
    for fraction in ({"secret": 1.10}, {"secret": "x", "passphrase": 12345678.5}):
        sent = {"secret": fraction}
        refused = await call(
            client, "POST", "/v2/secret/conceal", "/v2/secret/conceal", valid=False, json=sent
        )
        assert refused["message"].startswith("Incorrect payload format")
