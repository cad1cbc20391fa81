"""Reading request parameters: JSON, forms with Rack-style brackets, and the query string."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from app.api.errors import ApiError
from app.core.passwords import CharacterSets
from app.core.secrets import ConcealRequest, GenerateRequest

Params = dict[str, Any]
SMALL_BODY = 64 * 1024  # reveal and burn bodies hold a flag and a passphrase
_HUGE = 2**31  # what an infinite number clamps from
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_params(request: web.Request, max_bytes: int = SMALL_BODY) -> Params:
    """Query string, then the body on top: upstream merges both into one hash.

    `max_bytes` is this caller's limit (it depends on the plan); a declared length over
    it is refused before any of the body is read. The app-wide client_max_size, set
    for the largest plan, still bounds bodies sent without a length.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"Request body is larger than {max_bytes} bytes")
    if request.can_read_body and _coded(request):
        raise ApiError(415, "Send the body uncompressed: Content-Encoding is not accepted")
    params = nest(request.query.items())
    try:
        params.update(await _body(request))
    except ConnectionResetError:
        # The client left mid-body: its failure, not ours, so no 500 in logs or metrics.
        raise ApiError(400, "The request body was cut short") from None
    return params


def _coded(request: web.Request) -> bool:
    codings = request.headers.getall("Content-Encoding", [])
    return any(c.strip().lower() not in ("", "identity") for c in ",".join(codings).split(","))


async def _body(request: web.Request) -> Params:
    if request.content_type == "application/json" or request.content_type.endswith("+json"):
        return await _json_body(request)
    if request.content_type in _FORMS:
        return await _form_body(request)
    if request.can_read_body and await request.read():
        raise ApiError(415, "Send JSON (application/json) or a form body")
    return {}


async def _form_body(request: web.Request) -> Params:
    try:
        form = await request.post()
    except (ValueError, HttpProcessingError):
        raise ApiError(400, "Failed to parse the form body") from None
    except LookupError:  # the charset of the Content-Type or of a part: unknown, or not text
        raise ApiError(415, "Unsupported charset: send the form body as UTF-8") from None
    return nest((k, v) for k, v in form.items() if isinstance(v, str))


async def _json_body(request: web.Request) -> Params:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "Failed to parse body as JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The JSON body must be an object")
    return body


def nest(pairs: Iterable[tuple[str, str]]) -> Params:
    """`secret[ttl]=300` -> {"secret": {"ttl": "300"}}; `recipient[]=a` -> {"recipient": ["a"]}."""
    out: Params = {}
    for name, value in pairs:
        appends = name.endswith("[]")
        path = name.removesuffix("[]").replace("]", "").split("[")
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        leaf = path[-1]
        if not appends:
            node[leaf] = value
        elif isinstance(node.get(leaf), list):
            node[leaf].append(value)
        else:
            node[leaf] = [value]
    return out


def as_int(value: Any) -> int | None:
    """An integer from a number or numeric string; None when absent; 0 when garbage
    (upstream's rule: garbage then clamps to the minimum, it is never an error)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _as_float(value)
    if math.isinf(number):
        return _HUGE if number > 0 else -_HUGE
    return int(number)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def as_bool(value: Any) -> bool:
    """Only JSON true or the string "true" count (upstream HEAD's rule)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def as_text(value: Any, field: str) -> str:
    """A string field; an integer (1, or JSON's 1.0 or 1e7 alike) counts as its decimal
    text, anything else is a shape error: a fraction would not come back as it was sent
    (1.10 as "1.1"), so it is refused rather than altered."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _utf8(value, field)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ApiError(422, f"Incorrect payload format: {field} must be a string")


def _utf8(value: str, field: str) -> str:
    """JSON may smuggle lone surrogates (\\ud800), which no UTF-8 store can hold."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ApiError(422, f"Incorrect payload format: {field} must be valid UTF-8 text") from None
    return value


def as_list(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(item for item in items if isinstance(item, str) and item)


_SET_NAMES = ("uppercase", "lowercase", "numbers", "symbols", "exclude_ambiguous")


def as_character_sets(raw: Any) -> CharacterSets | None:
    """A given object replaces the configured sets; keys left out default to on."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(422, "Incorrect payload format: character_sets must be an object")
    chosen = {name: as_bool(raw[name]) for name in _SET_NAMES if name in raw}
    return CharacterSets(**chosen)


def conceal_request(fields: Params) -> ConcealRequest:
    """A conceal from its fields (v2 nests them under `secret`, v1 sends them flat)."""
    return ConcealRequest(secret=as_text(fields.get("secret"), "secret"), **_create_fields(fields))


def generate_request(fields: Params, *, shown_at_creation: bool = False) -> GenerateRequest:
    return GenerateRequest(
        length=as_int(fields.get("length")),
        character_sets=as_character_sets(fields.get("character_sets")),
        shown_at_creation=shown_at_creation,
        **_create_fields(fields),
    )


def _create_fields(fields: Params) -> dict[str, Any]:
    return {
        "ttl": as_int(fields.get("ttl")),
        "passphrase": as_text(fields.get("passphrase"), "passphrase"),
        "recipients": as_list(fields.get("recipient")),
        "share_domain": as_text(fields.get("share_domain"), "share_domain") or None,
    }
