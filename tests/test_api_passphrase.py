"""Passphrase flows: checks, lockout counted in PostgreSQL, and argon2id off the event loop."""

from __future__ import annotations

import threading

import asyncpg
import pytest

from app import crypto
from app.core import secrets as core
from app.core.context import Caller
from app.core.errors import LockedOut, WrongPassphrase
from app.keys import SERVICES
from tests.factories import V2, Client, burn, conceal, generate, get, reveal

RIGHT = "correct-horse-1"
WRONG = "wrong-pass-1"


async def test_missing_passphrase_is_refused_and_secret_survives(client: Client) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    assert pair.body["record"]["secret"]["has_passphrase"] is True
    assert pair.body["record"]["metadata"]["has_passphrase"] is True
    status, body = await reveal(client, pair.secret_key)
    assert (status, body["message"]) == (422, "Incorrect passphrase")
    status, body = await get(client, f"/secret/{pair.secret_key}")
    assert status == 200
    assert body["record"]["has_passphrase"] is True


async def test_wrong_then_right(client: Client) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    status, _ = await reveal(client, pair.secret_key, passphrase=WRONG)
    assert status == 422
    status, body = await reveal(client, pair.secret_key, passphrase=RIGHT)
    assert status == 200
    assert body["record"]["secret_value"] == "hello"


async def test_without_continue_nothing_is_revealed(client: Client) -> None:
    pair = await conceal(client, "hello")
    response = await client.post(f"{V2}/secret/{pair.secret_key}/reveal", json={"continue": False})
    body = await response.json()
    assert response.status == 200
    assert "secret_value" not in body["record"]
    assert body["details"]["show_secret"] is False
    status, body = await reveal(client, pair.secret_key)
    assert status == 200
    assert body["record"]["secret_value"] == "hello"


async def test_sixth_wrong_attempt_is_locked_out_even_with_the_right_passphrase(
    client: Client,
) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    for _ in range(5):
        status, body = await reveal(client, pair.secret_key, passphrase=WRONG)
        assert (status, body["message"]) == (422, "Incorrect passphrase")
    response = await client.post(
        f"{V2}/secret/{pair.secret_key}/reveal", json={"continue": True, "passphrase": RIGHT}
    )
    body = await response.json()
    assert response.status == 429
    assert body["error_type"] == "LimitExceeded"
    assert 1790 <= int(response.headers["Retry-After"]) <= 1800
    status, _ = await get(client, f"/secret/{pair.secret_key}")
    assert status == 200  # locked, not destroyed


async def test_lock_ends_after_its_time(client: Client, db: asyncpg.Connection) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    for _ in range(5):
        await reveal(client, pair.secret_key, passphrase=WRONG)
    status, _ = await reveal(client, pair.secret_key, passphrase=RIGHT)
    assert status == 429
    # 30 minutes later: the lock is over and the failures are out of the 10-minute window.
    await db.execute("UPDATE passphrase_lockouts SET locked_until = now() - interval '1 second'")
    await db.execute("UPDATE passphrase_attempts SET failed_at = failed_at - interval '31 minutes'")
    status, body = await reveal(client, pair.secret_key, passphrase=RIGHT)
    assert status == 200
    assert body["record"]["secret_value"] == "hello"


async def test_right_passphrase_clears_the_client_count(client: Client) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    for _ in range(4):
        await reveal(client, pair.secret_key, passphrase=WRONG)
    await reveal(client, pair.secret_key, passphrase=RIGHT, **{"continue": False})
    for _ in range(4):
        status, _ = await reveal(client, pair.secret_key, passphrase=WRONG)
        assert status == 422
    status, _ = await reveal(client, pair.secret_key, passphrase=RIGHT)
    assert status == 200


async def test_twenty_failures_from_many_clients_lock_the_secret_for_everyone(
    client: Client,
) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    svc = client.app[SERVICES]
    for n in range(20):
        caller = Caller(client=f"192.0.2.{n % 5}")  # 5 clients, 4 failures each: none alone locked
        with pytest.raises(WrongPassphrase):
            await core.reveal(svc, caller, pair.secret_key, WRONG, True)
    with pytest.raises(LockedOut):
        await core.reveal(svc, Caller(client="198.51.100.7"), pair.secret_key, RIGHT, True)


async def test_lockout_rows_hold_no_address(client: Client, db: asyncpg.Connection) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    await reveal(client, pair.secret_key, passphrase=WRONG)
    refs = await db.fetch("SELECT client_ref FROM passphrase_attempts")
    assert len(refs) == 1
    assert b"127.0.0.1" not in refs[0]["client_ref"]
    expected = crypto.client_ref(client.app[SERVICES].keys, "127.0.0.1")
    assert refs[0]["client_ref"] == expected


async def test_burn_needs_the_passphrase(client: Client) -> None:
    pair = await conceal(client, "hello", passphrase=RIGHT)
    status, body = await burn(client, pair.receipt_key, passphrase="nope-nope-nope")
    assert (status, body["message"]) == (422, "Double check that passphrase")
    status, body = await burn(client, pair.receipt_key, passphrase=RIGHT)
    assert status == 200
    assert body["record"]["state"] == "burned"
    status, _ = await get(client, f"/secret/{pair.secret_key}")
    assert status == 404


async def test_receipt_of_a_passphrase_secret_cannot_decrypt(client: Client) -> None:
    pair = await generate(client, passphrase=RIGHT)
    status, body = await get(client, f"/private/{pair.receipt_key}")
    assert status == 200
    assert body["details"]["can_decrypt"] is False
    assert body["details"]["secret_value"] is None


async def test_passphrase_hashing_runs_off_the_event_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = crypto.passphrase_key

    def spy(passphrase: str, salt: bytes, cost: crypto.PassphraseCost) -> bytes:
        threads.append(threading.get_ident())
        return real(passphrase, salt, cost)

    monkeypatch.setattr(crypto, "passphrase_key", spy)
    pair = await conceal(client, "hello", passphrase=RIGHT)
    await reveal(client, pair.secret_key, passphrase=RIGHT)
    assert len(threads) == 2
    assert threading.get_ident() not in threads
