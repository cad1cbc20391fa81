"""The OpenAPI document is valid, served, and true: real responses of v2 and v1 match its
schemas, and the requests sent here are valid under it."""

from __future__ import annotations

import base64
import re
from typing import Any

import asyncpg
import jsonschema
from openapi_spec_validator import validate
from pytest_aiohttp import AiohttpClient
from yarl import URL

from app import crypto
from app.api.openapi import AUDIT_EVENT, FIRST_SECOND, LAST_SECOND, document
from app.api.v2.audit import EVENT_FIELDS
from app.config import DatabaseConfig, Settings
from app.core.accounts import add_customer
from app.keys import SERVICES
from app.server import create_app
from tests.conftest import make_settings
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


def check(path: str, method: str, status: int, body: Any, headers: Any = None) -> None:
    responses = DOC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    schema = inline(responses[str(status)]["content"]["application/json"]["schema"])
    jsonschema.Draft202012Validator(schema).validate(body)
    for name, header in responses[str(status)].get("headers", {}).items():
        assert name in headers, f"{method.upper()} {path} {status} lacks {name}"
        jsonschema.Draft202012Validator(header["schema"]).validate(headers[name])


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
    check(template, method.lower(), response.status, body, response.headers)
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


AUDIT = "/v2/audit"
ADMIN = "auditor@example.com"


def query_is_valid(path: str, name: str, value: Any) -> bool:
    """Whether the text of a query parameter is valid under the document, as a string or,
    when it is an integer's decimal text, as that integer."""
    (param,) = (p for p in DOC["paths"][path]["get"]["parameters"] if p["name"] == name)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    validator = jsonschema.Draft202012Validator(param["schema"], format_checker=checker)
    text = str(value)
    as_integer = re.fullmatch(r"-?[0-9]+", text) is not None
    return validator.is_valid(text) or (as_integer and validator.is_valid(int(text)))


async def audit(client: Client, auth: dict[str, str] | None = None, **query: Any) -> Any:
    """GET /audit, whose query parameters must be valid under the document (a query
    string carries text; an integer stands for its decimal text)."""
    for name, value in query.items():
        assert query_is_valid(AUDIT, name, value) is True, (name, value)
    path = str(URL(AUDIT).with_query({k: str(v) for k, v in query.items()}))
    return await call(client, "GET", path, AUDIT, headers=auth or {})


async def admin_auth(client: Client) -> dict[str, str]:
    return basic(ADMIN, await add_customer(client.app[SERVICES], ADMIN, "basic", admin=True))


async def test_audit_pages_match(client: Client, db: asyncpg.Connection) -> None:
    # The trail outlives each test's truncation: read only what this test wrote.
    start = (await db.fetchval("SELECT now()")).isoformat()
    auth = await admin_auth(client)  # token.created
    for n in range(3):
        await conceal(client, f"v{n}")  # secret.created
    first = await audit(client, auth, since=start, limit=2)
    assert (first["count"], len(first["records"])) == (2, 2)
    assert list(first["records"][0]) == list(EVENT_FIELDS)
    assert set(AUDIT_EVENT["properties"]) == set(EVENT_FIELDS)
    rest = await audit(client, auth, since=start, after=first["next_after"], limit=1000)
    assert rest["next_after"] is None  # the last page
    ids = [record["id"] for record in first["records"] + rest["records"]]
    assert ids == sorted(ids)
    events = {record["event"] for record in rest["records"]}
    assert {"secret.created", "audit.read"} <= events  # the first read is recorded too
    for since in ("9999-01-01", LAST_SECOND):
        assert (await audit(client, auth, since=since))["count"] == 0
    for until in ("1970-01-01T00:00:01+00:00", 1):
        assert (await audit(client, auth, until=until))["count"] == 0


async def test_audit_takes_every_documented_value(client: Client) -> None:
    """The ends of the documented ranges, and what is never rejected but clamped."""
    auth = await admin_auth(client)
    moments = ("0001-01-01T00:00:00+14:00", "0001-01-01", FIRST_SECOND)
    for since in moments:
        assert (await audit(client, auth, since=since))["count"] > 0
    for until in ("9999-12-31T23:59:59-14:00", "9999-12-31", LAST_SECOND):
        assert (await audit(client, auth, since=moments[0], until=until))["count"] > 0
    for after in ("1e300", "99999999999999999999", "-5", "x", ""):
        await audit(client, auth, after=after)
    for limit in ("0", "-1", "x", "5000", "1e300", "2.9"):
        await audit(client, auth, limit=limit)
    assert (await audit(client, auth, limit="2.9"))["count"] == 2


async def test_audit_errors_match(client: Client) -> None:
    auth = await admin_auth(client)
    token = await add_customer(client.app[SERVICES], EMAIL, "basic")
    for refused in ("yesterday", "", "2025-13-01", "99999999999999", "1.5"):
        assert query_is_valid(AUDIT, "since", refused) is False
        body = await call(client, "GET", f"{AUDIT}?since={refused}", AUDIT, headers=auth)
        assert body["error_type"] == "FormError"
        body = await call(client, "GET", f"{AUDIT}?until={refused}", AUDIT, headers=auth)
        assert body["error_type"] == "FormError"
    wrong: tuple[dict[str, str], ...] = (
        {},
        basic(ADMIN, "not-the-token"),
        basic("nobody@example.com", "x"),
        {"Authorization": "Basic %%%"},
        {"Authorization": "Bearer x"},
    )
    # Who may read comes first, whatever the parameters say.
    for query in ("", "?since=yesterday"):
        for headers in wrong:
            body = await call(client, "GET", AUDIT + query, AUDIT, headers=headers)
            assert body["error_type"] == "Unauthorized"
        body = await call(client, "GET", AUDIT + query, AUDIT, headers=basic(EMAIL, token))
        assert body["error_type"] == "Forbidden"


async def test_audit_unavailable_matches(aiohttp_client: AiohttpClient, settings: Settings) -> None:
    small = make_settings(
        settings,
        database=DatabaseConfig(url=settings.database.url, pool_max=1, acquire_timeout=0.3),
    )
    client: Client = await aiohttp_client(create_app(small))
    auth = await admin_auth(client)
    async with client.app[SERVICES].store.pool.acquire():
        body = await call(client, "GET", AUDIT, AUDIT, headers=auth)
    assert body["error_type"] == "ServiceUnavailable"


async def test_the_document_describes_itself(client: Client) -> None:
    body = await call(client, "GET", "/v2/openapi.json", "/v2/openapi.json")
    assert body == DOC
