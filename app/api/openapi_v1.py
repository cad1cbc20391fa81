"""The /api/v1 part of the OpenAPI document: flat form parameters, the classic metadata
hash, and every error a 404 with a `message` (503 only when the database is away)."""

from __future__ import annotations

from app.api.openapi_schema import (
    BOOL,
    FLAG,
    FORM,
    INT,
    KEY,
    PASSPHRASE_GUESS,
    SET_NAMES,
    STR,
    Schema,
    create_fields,
    generate_length,
    links,
    obj,
    operation,
    request_body,
    required_body,
    responses,
    secured,
)
from app.config import Settings

METADATA_FIELDS: dict[str, Schema] = {
    "custid": STR,
    "metadata_key": KEY,
    "ttl": INT,
    "metadata_ttl": INT,
    "state": STR,
    "updated": INT,
    "created": INT,
    "recipient": {"type": "array", "items": STR},
    "share_domain": STR,
}
# `secret_key` and `secret_ttl` only while the secret is live; `received` once it is.
LIVE_FIELDS: dict[str, Schema] = {"secret_key": KEY, "secret_ttl": INT, "received": INT}
CREATED_FIELDS = {**METADATA_FIELDS, **LIVE_FIELDS, "passphrase_required": BOOL}
del CREATED_FIELDS["received"]
METADATA = obj(METADATA_FIELDS, LIVE_FIELDS)
STATUS = obj({"status": STR, "locale": STR})
RECORDS: dict[str, Schema] = {
    "V1Error": obj({"message": STR}, {"secret_key": STR}),
    "V1Status": STATUS,
    "V1Created": obj(CREATED_FIELDS),
    "V1Generated": obj({**CREATED_FIELDS, "value": STR}),
    "V1Revealed": obj({"value": STR, "secret_key": KEY, "share_domain": STR}),
    "V1Metadata": obj(
        {**METADATA_FIELDS, "passphrase_required": BOOL}, {**LIVE_FIELDS, "value": STR}
    ),
    "V1Burned": obj({"state": METADATA, "secret_shortkey": STR}),
    "V1Recent": {"type": "array", "items": METADATA},
}


def schemas(settings: Settings) -> dict[str, Schema]:
    create = create_fields(settings)
    # A form has no objects: the sets are upstream's bracket names.
    sets = {f"character_sets[{name}]": FLAG for name in SET_NAMES}
    return {
        **RECORDS,
        "V1ShareBody": obj({"secret": {"type": "string", "minLength": 1}}, create),
        "V1GenerateBody": obj({}, {**create, "length": generate_length(settings.limits), **sets}),
        "V1ConsumeBody": obj({}, {"passphrase": PASSPHRASE_GUESS}),
    }


def _v1(op_id: str, ok: str | None, body: str | None = None) -> Schema:
    """Every refusal is a 404; only an unavailable database is a 503, in the v2 shape."""
    answers = {**responses(ok, "V1Error", [404]), **responses(None, "Error", [503])}
    return operation(op_id, "v1", answers, request_body(body, FORM) if body else None)


SHARE_KEY = "$response.body#/secret_key"
METADATA_KEY = "$response.body#/metadata_key"
CREATED_LINKS = links(
    ("v1Reveal", SHARE_KEY, None),
    ("v1ShowMetadata", METADATA_KEY, None),
    ("v1PostMetadata", METADATA_KEY, None),
    ("v1ShowMetadataAlias", METADATA_KEY, None),
    ("v1PostMetadataAlias", METADATA_KEY, None),
    ("v1Burn", METADATA_KEY, None),
    ("v1BurnAlias", METADATA_KEY, None),
)


def _created(op_id: str, ok: str, body: str) -> Schema:
    built = _v1(op_id, ok, body)
    built["responses"]["200"]["links"] = CREATED_LINKS
    return built


def _metadata_paths(prefix: str, suffix: str) -> Schema:
    """/private/... and its /metadata/... aliases."""
    return {
        f"/v1/{prefix}/{{key}}": {
            "get": _v1(f"v1ShowMetadata{suffix}", "V1Metadata"),
            "post": _v1(f"v1PostMetadata{suffix}", "V1Metadata"),
        },
        f"/v1/{prefix}/{{key}}/burn": {"post": _v1(f"v1Burn{suffix}", "V1Burned", "V1ConsumeBody")},
        f"/v1/{prefix}/recent": {
            "get": secured(_v1(f"v1Recent{suffix}", "V1Recent")),
            # `POST /private/{key}` with the key "recent", as upstream routes it: 404.
            "post": _v1(f"v1PostMetadataRecent{suffix}", None),
        },
    }


def paths() -> Schema:
    return {
        "/v1/status": {"get": _v1("v1Status", "V1Status")},
        "/v1/authcheck": {"get": secured(_v1("v1Authcheck", "V1Status"))},
        "/v1/share": {"post": required_body(_created("v1Share", "V1Created", "V1ShareBody"))},
        "/v1/create": {"post": required_body(_created("v1Create", "V1Created", "V1ShareBody"))},
        "/v1/generate": {"post": _created("v1Generate", "V1Generated", "V1GenerateBody")},
        "/v1/secret/{key}": {"post": _v1("v1Reveal", "V1Revealed", "V1ConsumeBody")},
        **_metadata_paths("private", ""),
        **_metadata_paths("metadata", "Alias"),
    }
