"""The OpenAPI document is valid, served, and true: real responses match its schemas."""

from __future__ import annotations

import base64
from typing import Any

import jsonschema
from openapi_spec_validator import validate

from app.api.openapi import document
from app.core.accounts import add_customer
from app.keys import SERVICES
from tests.factories import V2, Client, conceal, generate

DOC = document()


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


async def call(client: Client, method: str, path: str, template: str, **kwargs: Any) -> Any:
    response = await client.request(method, f"{V2}{path}", **kwargs)
    body = await response.json()
    check(template, method.lower(), response.status, body)
    return body


def test_the_document_is_valid_openapi() -> None:
    validate(DOC)
    assert DOC["openapi"] == "3.1.0"


async def test_the_service_serves_it(client: Client) -> None:
    response = await client.get(f"{V2}/openapi.json")
    assert await response.json() == DOC


async def test_lifecycle_responses_match(client: Client) -> None:
    conceal_body = {"secret": {"secret": "x", "ttl": 600, "passphrase": "correct-horse-1"}}
    created = await call(client, "POST", "/secret/conceal", "/secret/conceal", json=conceal_body)
    share, receipt = created["record"]["secret"]["key"], created["record"]["metadata"]["key"]
    await call(client, "GET", f"/secret/{share}", "/secret/{key}")
    await call(
        client,
        "POST",
        f"/secret/{share}/reveal",
        "/secret/{key}/reveal",
        json={"continue": True, "passphrase": "wrong-horse-1"},
    )
    await call(
        client,
        "POST",
        f"/secret/{share}/reveal",
        "/secret/{key}/reveal",
        json={"continue": True, "passphrase": "correct-horse-1"},
    )
    await call(
        client, "POST", f"/secret/{share}/reveal", "/secret/{key}/reveal", json={"continue": True}
    )
    await call(client, "GET", f"/private/{receipt}", "/private/{key}")
    generated = await generate(client)
    await call(client, "GET", f"/private/{generated.receipt_key}", "/private/{key}")
    await call(
        client,
        "POST",
        f"/private/{generated.receipt_key}/burn",
        "/private/{key}/burn",
        json={"continue": True},
    )
    await call(
        client, "POST", "/secret/generate", "/secret/generate", json={"secret": {"length": 20}}
    )


async def test_errors_and_meta_responses_match(client: Client) -> None:
    await call(client, "POST", "/secret/conceal", "/secret/conceal", json={"secret": {}})
    await call(
        client,
        "POST",
        "/secret/conceal",
        "/secret/conceal",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    await call(client, "GET", "/private/recent", "/private/recent")
    await call(client, "GET", "/secret/unknownkey", "/secret/{key}")
    for path in ("/status", "/version", "/supported-locales"):
        await call(client, "GET", path, path)


async def test_recent_matches(client: Client) -> None:
    token = await add_customer(client.app[SERVICES], "doc@example.com", "basic")
    auth = {
        "Authorization": "Basic " + base64.b64encode(f"doc@example.com:{token}".encode()).decode()
    }
    await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": "x"}}, headers=auth)
    await conceal(client, "anonymous")
    body = await call(client, "GET", "/private/recent", "/private/recent", headers=auth)
    assert body["count"] == 1
