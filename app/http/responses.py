"""JSON responses, encoded by orjson.

Why not aiohttp's json_response: it encodes with the json module, and at 16 connections
that was 5 % of the service's CPU a conceal (py-spy, bench/FINDINGS.md, twelfth round),
when the one service process is what saturates first. orjson does the same bodies in a
fraction of the time. The bytes differ only in spacing and in leaving non-ASCII text
unescaped: the same JSON to any parser.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """A JSON body with the headers aiohttp's json_response gives."""
    return web.Response(
        body=dumps(data), status=status, content_type="application/json", charset="utf-8"
    )


def dumps(data: Any) -> bytes:
    """orjson, else the json module for what orjson refuses (text holding lone surrogates,
    integers past 64 bits): whatever json.dumps encodes is still answered, never a 500."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        return json.dumps(data).encode()
