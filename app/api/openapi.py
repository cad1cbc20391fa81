"""The OpenAPI 3.1 document of /api/v2 and /api/v1 (app/api/openapi_v1.py), served at
/api/v2/openapi.json and kept true by tests that validate real responses against it
(tests/test_openapi.py) and by a schemathesis run (tests/reliability/test_fuzz.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from app import __version__
from app.api import openapi_v1
from app.api.openapi_schema import (
    BOOL,
    FLAG,
    INT,
    KEY,
    NULLABLE_INT,
    NULLABLE_STR,
    PASSPHRASE_GUESS,
    SET_NAMES,
    STR,
    Schema,
    create_fields,
    generate_length,
    key_param,
    links,
    nullable,
    obj,
    operation,
    query_param,
    request_body,
    required_body,
    responses,
    secured,
)
from app.config import Settings
from app.http.responses import json_response
from app.keys import SETTINGS

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

HEX: Schema = {"type": "string", "pattern": "^([0-9a-f]{2})+$"}
AUDIT_EVENT = obj(
    {
        "id": INT,
        "at": {"type": "string", "format": "date-time"},
        "event": STR,
        "outcome": STR,
        "actor": STR,
        "client_ip": NULLABLE_STR,
        "user_agent": NULLABLE_STR,
        "request_id": NULLABLE_STR,
        "receipt_ref": nullable(HEX),
        "detail": NULLABLE_STR,
        "part": INT,
        "seq": INT,
        "chain_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }
)
AUDIT_PAGE = obj(
    {
        "success": {"const": True},
        "count": INT,
        "records": {"type": "array", "items": AUDIT_EVENT},
        "next_after": {
            "description": "The last record's id when the page is full (send it as `after` "
            "for the next page); null on the last page.",
            "type": ["integer", "null"],
        },
    }
)
DOCUMENT = obj({"openapi": STR, "info": {"type": "object"}, "paths": {"type": "object"}})

RECORDS = {
    "Error": ERROR,
    "Created": CREATED,
    "Shown": SHOWN,
    "Receipt": RECEIPT_READ,
    "Burned": BURNED,
    "Recent": RECENT,
    "Status": STATUS,
    "Version": VERSION,
    "Locales": LOCALES,
    "AuditPage": AUDIT_PAGE,
    "Document": DOCUMENT,
}


def _bodies(settings: Settings) -> dict[str, Schema]:
    """What the create rules accept, for this deployment's limits and share domains."""
    create = create_fields(settings)
    value = {"anyOf": [{"type": "string", "minLength": 1}, INT]}
    options = {
        "length": generate_length(settings.limits),
        "character_sets": nullable(obj({}, dict.fromkeys(SET_NAMES, FLAG))),
    }
    return {
        "ConcealBody": obj({"secret": obj({"secret": value}, create)}),
        "GenerateBody": obj({}, {"secret": nullable(obj({}, {**create, **options}))}),
        "ConsumeBody": obj({}, {"continue": FLAG, "passphrase": PASSPHRASE_GUESS}),
    }


COMMON = (400, 401, 413, 415, 422, 429, 503)
READ = (401, 404, 429, 503)
SHARE_KEY = "$response.body#/record/secret/key"
RECEIPT_KEY = "$response.body#/record/metadata/key"
CONFIRM: Schema = {"continue": True}
CREATED_LINKS = links(
    ("showSecret", SHARE_KEY, None),
    ("reveal", SHARE_KEY, CONFIRM),
    ("showReceipt", RECEIPT_KEY, None),
    ("showReceiptAlias", RECEIPT_KEY, None),
    ("burn", RECEIPT_KEY, CONFIRM),
    ("burnAlias", RECEIPT_KEY, CONFIRM),
)


def _v2(op_id: str, ok: str | None, *errors: int, body: str | None = None) -> Schema:
    answers = responses(ok, "Error", errors)
    return operation(op_id, "v2", answers, request_body(body) if body else None)


def _receipt_paths(prefix: str, suffix: str) -> Schema:
    """/private/... and its /receipt/... aliases."""
    return {
        f"/v2/{prefix}/{{key}}": {"get": _v2(f"showReceipt{suffix}", "Receipt", *READ)},
        f"/v2/{prefix}/{{key}}/burn": {
            "post": _v2(f"burn{suffix}", "Burned", *COMMON, 404, body="ConsumeBody")
        },
        f"/v2/{prefix}/recent": {"get": secured(_v2(f"recent{suffix}", "Recent", 401, 429, 503))},
    }


def _v2_paths() -> Schema:
    conceal = required_body(_v2("conceal", "Created", *COMMON, body="ConcealBody"))
    generate = _v2("generate", "Created", *COMMON, body="GenerateBody")
    for created in (conceal, generate):
        created["responses"]["200"]["links"] = CREATED_LINKS
    return {
        # GET on these two is `GET /secret/{key}` with that word as the key, as upstream
        # routes it: always 404. Documented so that the Allow header (GET, POST) is true.
        "/v2/secret/conceal": {"post": conceal, "get": _v2("showSecretConceal", None, *READ)},
        "/v2/secret/generate": {"post": generate, "get": _v2("showSecretGenerate", None, *READ)},
        "/v2/secret/{key}": {"get": _v2("showSecret", "Shown", *READ)},
        "/v2/secret/{key}/reveal": {
            "post": _v2("reveal", "Shown", *COMMON, 404, body="ConsumeBody")
        },
        **_receipt_paths("private", ""),
        **_receipt_paths("receipt", "Alias"),
        "/v2/status": {"get": _v2("status", "Status")},
        "/v2/version": {"get": _v2("version", "Version")},
        "/v2/supported-locales": {"get": _v2("supportedLocales", "Locales")},
        "/v2/audit": {"get": _audit()},
        "/v2/openapi.json": {"get": _v2("openapi", "Document")},
    }


# Epoch seconds of the first and the last second that Python dates can hold.
FIRST_SECOND = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
LAST_SECOND = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
MOMENT: Schema = {
    "type": ["string", "integer"],
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        {"type": "integer", "minimum": FIRST_SECOND, "maximum": LAST_SECOND},
    ],
    "examples": ["2025-01-31T12:00:00Z", "2025-01-31", 1738324800],
}
_READ_AS = (
    "An ISO 8601 date, or date and time (UTC unless it has an offset), or epoch seconds; "
    "any other text is a 422."
)
AUDIT_PARAMS = [
    query_param(
        "since",
        MOMENT,
        f"Events at or after this moment. {_READ_AS} Default: 0 (1970-01-01T00:00:00Z).",
    ),
    query_param("until", MOMENT, f"Events before this moment. {_READ_AS} Default: no end."),
    query_param(
        "after",
        {"default": 0, "examples": [0]},
        "Events whose `id` is larger: the previous page's `next_after`. Never rejected: "
        "numeric text counts as its number (truncated); below 0, or not a number, is 0.",
    ),
    query_param(
        "limit",
        {"default": 100, "examples": [100]},
        "Events per page, 1 to 1000. Never rejected: numeric text counts as its number "
        "(truncated) and is clamped into [1, 1000]; 0, empty or not a number is 100.",
    ),
]


AUDIT_DESCRIPTION = (
    "The audit trail, a page at a time, in `id` order. Admin accounts only (`python -m app "
    "customers add --admin`): any other account gets 403. Each read is itself recorded "
    "(`audit.read`)."
)


def _audit() -> Schema:
    read = secured(_v2("auditEvents", "AuditPage", 401, 403, 422, 503))
    read["description"] = AUDIT_DESCRIPTION
    read["parameters"] = AUDIT_PARAMS
    return read


def _with_key_param(paths: Schema) -> Schema:
    for path, item in paths.items():
        if "{key}" in path:
            item["parameters"] = [key_param()]
    return paths


def document(settings: Settings) -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ots: Onetime Secret API v2 and v1", "version": __version__},
        "servers": [{"url": "/api"}],
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {**RECORDS, **_bodies(settings), **openapi_v1.schemas(settings)},
        },
        # Anonymous callers are welcome; sent credentials must be right (401 otherwise).
        "security": [{}, {"basic": []}],
        "paths": _with_key_param({**_v2_paths(), **openapi_v1.paths()}),
    }


async def openapi(request: web.Request) -> web.Response:
    return json_response(document(request.config_dict[SETTINGS]))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v2/openapi.json", openapi)
