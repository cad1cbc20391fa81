"""The OpenAPI 3.1 document of /api/v2, served at /api/v2/openapi.json and kept true by
tests that validate real responses against it (tests/test_openapi.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app import __version__

Schema = dict[str, Any]

INT, STR, BOOL = {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
KEY: Schema = {"type": "string", "pattern": "^[0-9a-z]+$"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


FLAG_NAMES = (
    "is_viewed",
    "is_received",
    "is_burned",
    "is_expired",
    "is_orphaned",
    "is_destroyed",
    "is_truncated",
    "has_passphrase",
    "show_recipients",
)
FLAGS = dict.fromkeys(FLAG_NAMES, BOOL)
SET_NAMES = ("uppercase", "lowercase", "numbers", "symbols", "exclude_ambiguous")
SECRET = obj(
    {
        "identifier": KEY,
        "key": KEY,
        "state": STR,
        "secret_ttl": INT,
        "lifespan": INT,
        "shortkey": STR,
        "shortid": STR,
        "has_passphrase": BOOL,
        "verification": BOOL,
        "is_truncated": BOOL,
        "created": INT,
        "updated": INT,
    },
    {"secret_value": STR},
)
RECEIPT_FIELDS: dict[str, Schema] = {
    "identifier": KEY,
    "key": KEY,
    "custid": STR,
    "state": STR,
    "secret_shortkey": STR,
    "secret_ttl": INT,
    "metadata_ttl": INT,
    "receipt_ttl": INT,
    "lifespan": INT,
    "kind": STR,
    "created": INT,
    "updated": INT,
    "shortkey": STR,
    "shortid": STR,
    **FLAGS,
}
CREATED_METADATA = obj({**RECEIPT_FIELDS, "secret_identifier": KEY, "recipients": STR})
RECEIPT = obj(
    {
        **RECEIPT_FIELDS,
        "share_domain": STR,
        "received": NULLABLE_INT,
        "burned": NULLABLE_INT,
        "expired": NULLABLE_INT,
        "recipients": STR,
        "secret_state": NULLABLE_STR,
        "natural_expiration": STR,
        "expiration": INT,
        "expiration_in_seconds": INT,
        "share_path": STR,
        "burn_path": STR,
        "metadata_path": STR,
        "receipt_path": STR,
        "share_url": STR,
        "metadata_url": STR,
        "receipt_url": STR,
        "burn_url": STR,
    },
    {"secret_key": KEY, "secret_identifier": KEY},
)
LISTED = obj({**RECEIPT_FIELDS, "share_domain": STR, "recipients": STR})
ERROR = obj(
    {"message": STR, "error": STR, "error_type": STR, "success": {"const": False}},
    {"secret_key": STR, "retry_after": INT},
)
CREATED = obj(
    {
        "success": {"const": True},
        "custid": STR,
        "record": obj(
            {
                "metadata": CREATED_METADATA,
                "receipt": CREATED_METADATA,
                "secret": SECRET,
                "share_domain": NULLABLE_STR,
            }
        ),
        "details": obj(
            {
                "kind": {"enum": ["conceal", "generate"]},
                "recipient": STR,
                "recipient_safe": {"type": "array", "items": STR},
                "memo": STR,
            }
        ),
    }
)
SECRET_DETAILS = obj(
    {
        "continue": BOOL,
        "is_owner": BOOL,
        "show_secret": BOOL,
        "correct_passphrase": BOOL,
        "display_lines": INT,
        "one_liner": {"type": ["boolean", "null"]},
    }
)
SHOWN = obj({"success": {"const": True}, "record": SECRET, "details": SECRET_DETAILS})
RECEIPT_READ = obj({"success": {"const": True}, "record": RECEIPT, "details": {"type": "object"}})
BURNED = obj({"success": BOOL, "custid": STR, "record": RECEIPT, "details": {"type": "object"}})
RECENT = obj(
    {
        "success": {"const": True},
        "custid": STR,
        "count": INT,
        "records": {"type": "array", "items": LISTED},
        "details": {"type": "object"},
    }
)
STATUS = obj({"success": {"const": True}, "status": STR, "locale": STR})
VERSION = obj(
    {
        "success": {"const": True},
        "locale": STR,
        "version": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]+$"}},
    }
)
LOCALES = obj(
    {
        "success": {"const": True},
        "locales": {"type": "array", "items": STR},
        "default_locale": STR,
        "locale": STR,
    }
)

COMMON_FIELDS: dict[str, Schema] = {
    "ttl": INT,
    "passphrase": STR,
    "recipient": STR,
    "share_domain": STR,
}
# The value must be there and non-empty; everything else is optional.
CONCEAL_BODY = obj({"secret": obj({"secret": {"type": "string", "minLength": 1}}, COMMON_FIELDS)})
GENERATE_BODY = obj(
    {},
    {
        "secret": obj(
            {},
            {
                **COMMON_FIELDS,
                # 4: the shortest length that holds one character of each default set.
                "length": {"type": "integer", "minimum": 4, "maximum": 128},
                "character_sets": obj({}, dict.fromkeys(SET_NAMES, BOOL)),
            },
        )
    },
)
CONSUME_BODY = obj({}, {"continue": BOOL, "passphrase": STR})
KEY_PARAM = {"name": "key", "in": "path", "required": True, "schema": KEY}


def _responses(ok: str, *errors: int) -> Schema:
    out: Schema = {"200": {"description": "OK", "content": _json(ref(ok))}}
    for status in errors:
        out[str(status)] = {"description": "Error", "content": _json(ref("Error"))}
    return out


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _op(op_id: str, ok: str, *errors: int, body: str | None = None, key: bool = False) -> Schema:
    operation: Schema = {"operationId": op_id, "responses": _responses(ok, *errors)}
    if body:
        operation["requestBody"] = {"required": False, "content": _json(ref(body))}
    if key:
        operation["parameters"] = [KEY_PARAM]
    return operation


COMMON = (400, 401, 413, 415, 422, 429, 503)


def document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ots: Onetime Secret API v2", "version": __version__},
        "servers": [{"url": "/api/v2"}],
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Error": ERROR,
                "Created": CREATED,
                "Shown": SHOWN,
                "Receipt": RECEIPT_READ,
                "Burned": BURNED,
                "Recent": RECENT,
                "Status": STATUS,
                "Version": VERSION,
                "Locales": LOCALES,
                "ConcealBody": CONCEAL_BODY,
                "GenerateBody": GENERATE_BODY,
                "ConsumeBody": CONSUME_BODY,
            },
        },
        "security": [{}, {"basic": []}],
        "paths": {
            "/secret/conceal": {"post": _op("conceal", "Created", *COMMON, body="ConcealBody")},
            "/secret/generate": {"post": _op("generate", "Created", *COMMON, body="GenerateBody")},
            "/secret/{key}": {"get": _op("showSecret", "Shown", 401, 404, 429, 503, key=True)},
            "/secret/{key}/reveal": {
                "post": _op("reveal", "Shown", *COMMON, 404, body="ConsumeBody", key=True)
            },
            "/private/{key}": {"get": _op("showReceipt", "Receipt", 401, 404, 429, 503, key=True)},
            "/private/{key}/burn": {
                "post": _op("burn", "Burned", *COMMON, 404, body="ConsumeBody", key=True)
            },
            "/private/recent": {"get": _op("recent", "Recent", 401, 429, 503)},
            "/status": {"get": _op("status", "Status")},
            "/version": {"get": _op("version", "Version")},
            "/supported-locales": {"get": _op("supportedLocales", "Locales")},
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v2/openapi.json", openapi)
