"""JSON Schema building blocks shared by the v1 and v2 parts of the OpenAPI document.

The request fields describe what the parsers (app/api/parsing.py) and the create rules
(app/core/rules.py) really accept, which is more than a client should send: upstream
reads numbers leniently and never rejects a TTL, so neither do we, and the document
says so instead of promising a 422 that never comes.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from app.config import Limits, Settings
from app.core.rules import EMAIL

Schema = dict[str, Any]

INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
KEY: Schema = {"type": "string", "pattern": "^[0-9a-z]+$"}
NO_VALUE: Schema = {"enum": ["", None]}
SET_NAMES = ("uppercase", "lowercase", "numbers", "symbols", "exclude_ambiguous")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def content(schema: Schema, media: str = JSON) -> Schema:
    return {media: {"schema": schema}}


def key_param(name: str = "key") -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": KEY}


def query_param(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


TTL: Schema = {
    "description": "Seconds. Never rejected: clamped into [60, the plan's maximum]. "
    "Numeric text counts as its number; anything else counts as 0, so as the minimum.",
    "examples": [3600],
}
FLAG: Schema = {
    "description": 'On when `true` or the text "true"; any other value is off.',
    "examples": [True, False],
}


def passphrase(limits: Limits) -> Schema:
    """A new secret's passphrase: absent, empty or null means none (unless the operator
    requires one); an integer counts as its decimal text."""
    shortest, longest = limits.passphrase_min, limits.passphrase_max
    text = {"type": "string", "minLength": shortest, "maxLength": longest}
    choices = [text, *_integers_written_in(shortest, longest)]
    return {"anyOf": choices if limits.passphrase_required else [*choices, NO_VALUE]}


def _integers_written_in(shortest: int, longest: int) -> list[Schema]:
    """The integers whose decimal text (a minus sign counts) has shortest..longest characters."""
    positive = {
        "type": "integer",
        "minimum": 10 ** (shortest - 1) if shortest > 1 else 0,
        "maximum": 10**longest - 1,
    }
    negative = {
        "type": "integer",
        "minimum": -(10 ** (longest - 1) - 1),
        "maximum": -(10 ** max(shortest - 2, 0)),
    }
    return [positive, negative]


# The passphrase that opens an existing secret: any text or integer; a wrong one is refused.
PASSPHRASE_GUESS: Schema = {"type": ["string", "integer", "null"]}


def share_domain(settings: Settings) -> Schema:
    """Empty, this service's own host, or one of the operator's OTS_SHARE_DOMAINS."""
    own = (urlsplit(settings.base_url).hostname or "").lower()
    return {"enum": list(dict.fromkeys(["", None, own, *settings.share_domains]))}


def create_fields(settings: Settings) -> dict[str, Schema]:
    """The fields every create takes (v2 nests them under `secret`, v1 sends them flat)."""
    return {
        "ttl": TTL,
        "passphrase": passphrase(settings.limits),
        "recipient": RECIPIENT,
        "share_domain": share_domain(settings),
    }


def generate_length(limits: Limits) -> Schema:
    """4 holds one character of each default set (fewer sets allow less); 4.5 reads as 4."""
    length = {"type": "number", "minimum": 4, "exclusiveMaximum": limits.generate_max_length + 1}
    return {"anyOf": [length, NO_VALUE]}


_ADDRESS: Schema = {"type": "string", "pattern": EMAIL.pattern}
# What the parser skips (app/api/parsing.py as_list): empty text, and values that are not text.
_SKIPPED_ITEM: Schema = {"anyOf": [{"const": ""}, {"not": {"type": "string"}}]}
_SKIPPED: Schema = {"anyOf": [{"const": ""}, {"not": {"type": ["string", "array"]}}]}
RECIPIENT: Schema = {
    "description": "An e-mail address, or a list whose first address is kept; empty text "
    "and values that are not text are skipped. Needs an account: from an anonymous caller "
    "any address is refused (v2: 422, v1: 404).",
    "anyOf": [_ADDRESS, {"type": "array", "items": {"anyOf": [_ADDRESS, _SKIPPED_ITEM]}}, _SKIPPED],
}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_SECONDS: Schema = {"type": "string", "pattern": "^[0-9]+$"}
# Every error of these statuses carries the header (app/api/errors.py).
ERROR_HEADERS: dict[int, tuple[str, Schema, str]] = {
    401: ("WWW-Authenticate", {"const": 'Basic realm="ots"'}, "Send HTTP Basic credentials."),
    429: ("Retry-After", _SECONDS, "Seconds to wait before trying again."),
    503: ("Retry-After", _SECONDS, "Seconds to wait before trying again."),
}


def responses(ok: str | None, error: str, statuses: Iterable[int]) -> Schema:
    """200 with the component `ok` (if any), and the component `error` for each status."""
    out = {} if ok is None else {"200": {"description": "OK", "content": content(ref(ok))}}
    for status in statuses:
        phrase = HTTPStatus(status).phrase
        out[str(status)] = {"description": phrase, "content": content(ref(error))}
        if status in ERROR_HEADERS:
            name, schema, meaning = ERROR_HEADERS[status]
            header = {"description": meaning, "required": True, "schema": schema}
            out[str(status)]["headers"] = {name: header}
    return out


def operation(op_id: str, tag: str, answers: Schema, body: Schema | None = None) -> Schema:
    built: Schema = {"operationId": op_id, "tags": [tag], "responses": answers}
    if body is not None:
        built["requestBody"] = body
    return built


def request_body(name: str, media: str = JSON) -> Schema:
    return {"content": content(ref(name), media)}


def required_body(built: Schema) -> Schema:
    built["requestBody"]["required"] = True
    return built


def secured(built: Schema) -> Schema:
    """Only an account may call it: anonymous callers are refused."""
    built["security"] = [{"basic": []}]
    return built


def links(*targets: tuple[str, str, Schema | None]) -> Schema:
    """OpenAPI links (target operation, its `key`, an optional body), which let the
    stateful phase follow a create to the operations that use its keys."""
    out: Schema = {}
    for target, key, body in targets:
        out[target] = {"operationId": target, "parameters": {"key": key}}
        if body is not None:
            out[target]["requestBody"] = body
    return out
