"""Input PostgreSQL or UTF-8 cannot hold is a clear 422, never a 500, and stores nothing."""

from __future__ import annotations

import gzip

import asyncpg
import pytest

from tests.factories import V2, Client, conceal, raw_post

SURROGATE = '"a\\ud800b"'  # valid JSON, but no UTF-8 encoder accepts it


async def _count(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM receipts")
    return count


@pytest.mark.parametrize(
    "body",
    [
        '{"secret": {"secret": ' + SURROGATE + "}}",
        '{"secret": {"secret": "x", "passphrase": "long enough ' + SURROGATE[1:] + "}}",
        '{"secret": {"secret": "x", "share_domain": ' + SURROGATE + "}}",
    ],
)
async def test_lone_surrogates_on_create(client: Client, db: asyncpg.Connection, body: str) -> None:
    response = await client.post(
        f"{V2}/secret/conceal", data=body, headers={"Content-Type": "application/json"}
    )
    payload = await response.json()
    assert response.status == 422, payload
    assert "valid UTF-8" in payload["message"]
    assert await _count(db) == 0


@pytest.mark.parametrize("path", ["/secret/{s}/reveal", "/private/{r}/burn"])
async def test_lone_surrogate_passphrase_on_consume(client: Client, path: str) -> None:
    pair = await conceal(client, "kept", passphrase="correct-horse-1")
    url = V2 + path.format(s=pair.secret_key, r=pair.receipt_key)
    body = '{"continue": true, "passphrase": ' + SURROGATE + "}"
    response = await client.post(url, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 422
    status = (await client.get(f"{V2}/secret/{pair.secret_key}")).status
    assert status == 200


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("a\u0000b", "Invalid share domain"),
        ("x" * 300, "Invalid share domain"),
        ("not a domain", "Invalid share domain"),
        ("other.example.com", "Unknown domain: other.example.com"),
    ],
)
async def test_share_domain_is_checked(
    client: Client, db: asyncpg.Connection, domain: str, message: str
) -> None:
    response = await client.post(
        f"{V2}/secret/conceal", json={"secret": {"secret": "x", "share_domain": domain}}
    )
    assert response.status == 422
    assert (await response.json())["message"] == message
    assert await _count(db) == 0


async def test_own_host_as_share_domain_is_accepted(client: Client) -> None:
    pair = await conceal(client, "x", share_domain="OTS.example")
    assert pair.body["record"]["share_domain"] is None


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"secret[secret]=\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b"--b\r\nbroken", "multipart/form-data; boundary=b", 400),
        (b'{"secret": {"secret": "x"}}', "text/plain", 415),
        (b"\xff\xfe", "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    ],
)
async def test_malformed_bodies(
    client: Client, db: asyncpg.Connection, body: bytes, content_type: str, status: int
) -> None:
    response = await client.post(
        f"{V2}/secret/conceal", data=body, headers={"Content-Type": content_type}
    )
    payload = await response.json()
    assert response.status == status, payload
    assert payload["success"] is False
    assert await _count(db) == 0


@pytest.mark.parametrize("charset", ["bogus", "rot13", "base64"])
@pytest.mark.parametrize(
    ("path", "form"), [(f"{V2}/secret/conceal", "secret[secret]=x"), ("/api/v1/share", "secret=x")]
)
async def test_a_form_in_a_charset_that_is_no_text_encoding_is_415(
    client: Client, db: asyncpg.Connection, charset: str, path: str, form: str
) -> None:
    """aiohttp decodes a form in its declared charset, and an unknown one (or a codec that
    is not text, like rot13) raised LookupError: a 500 (test_header_fuzz.py found it)."""
    response = await client.post(
        path,
        data=form,
        headers={"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"},
    )
    assert response.status == (404 if path.startswith("/api/v1") else 415)  # v1: always 404
    assert (await response.json())["message"]
    assert await _count(db) == 0


async def test_a_multipart_part_in_a_charset_that_is_no_text_encoding_is_415(
    client: Client, db: asyncpg.Connection
) -> None:
    """A part of a multipart form declares its own charset, decoded the same way."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="secret[secret]"\r\n'
        b"Content-Type: text/plain; charset=rot13\r\n\r\nhello\r\n--b--\r\n"
    )
    response = await client.post(
        f"{V2}/secret/conceal",
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 415
    assert await _count(db) == 0


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "GZIP, identity"])
async def test_a_coded_body_is_415_whether_or_not_it_decodes(
    client: Client, db: asyncpg.Connection, coding: str
) -> None:
    """Bodies are taken as sent (the server does not decode them): a coded one is refused,
    not decoded, so a body that is not what its header says cannot fail after the answer
    (aiohttp logged that as an unhandled error) and a small body cannot unpack into a
    large one."""
    real = gzip.compress(b'{"secret": {"secret": "x"}}')
    for body in (real, b"not compressed at all"):
        response = await client.post(
            f"{V2}/secret/conceal",
            data=body,
            headers={"Content-Type": "application/json", "Content-Encoding": coding},
        )
        assert response.status == 415
        assert "Content-Encoding" in (await response.json())["message"]
    assert await _count(db) == 0
    plain = await client.post(
        f"{V2}/secret/conceal",
        json={"secret": {"secret": "x"}},
        headers={"Content-Encoding": "identity"},
    )
    assert plain.status == 200


async def test_multipart_form_is_read(client: Client) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="secret[secret]"\r\n\r\nhello\r\n--b--\r\n'
    response = await client.post(
        f"{V2}/secret/conceal",
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 200


@pytest.mark.parametrize("agent", [b"bad \xff\xfe bytes", b"\xc3\x28 not UTF-8", b"a\ttab"])
async def test_a_user_agent_postgresql_cannot_hold_is_recorded_cleaned(
    client: Client, db: asyncpg.Connection, agent: bytes
) -> None:
    """aiohttp hands header bytes that are not UTF-8 over as lone surrogates; the audit row
    of the request (and of every request batched with it) must not fail on them. (Other
    control characters than the tab never get this far: aiohttp's parser answers 400.)"""
    answer = await raw_post(
        client,
        f"{V2}/secret/conceal",
        b"Content-Type: application/json\r\nUser-Agent: " + agent + b"\r\n",
        b'{"secret": {"secret": "x"}}',
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    recorded = await db.fetchval(
        "SELECT user_agent FROM audit_events WHERE event = 'secret.created' ORDER BY id DESC"
    )
    assert recorded is not None
    assert recorded.isprintable()
