"""Opening a live secret: the passphrase check, its lockout, and decryption.

Runs before the consuming transaction, on purpose: argon2id takes tens of
milliseconds and must not hold a row lock or a pooled connection meanwhile. The
attempt is reserved first (store.lockouts), so concurrent guesses count exactly.
"""

from __future__ import annotations

import asyncio

from app import crypto, metrics
from app.core import audit
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import LockedOut, SecretUndecryptable, UnknownSecret, WrongPassphrase
from app.store import lockouts
from app.store.secrets import LiveSecret

# Checking a guess takes tens of milliseconds, so a slot frees up quickly; give up
# after about three seconds (every wait is bounded).
RESERVE_TRIES = 60
RESERVE_PAUSE = 0.05


async def open_live(
    svc: Services, caller: Caller, live: LiveSecret, share_key: str, passphrase: str, wrong: str
) -> bytes:
    """The plaintext of a live secret; WrongPassphrase (with text `wrong`) or LockedOut."""
    if live.passphrase_salt is None:
        return decrypt(svc, live, share_key, b"")
    client = crypto.client_ref(svc.keys, caller.client)
    attempt_id = await _reserve(svc, caller, live, client, share_key)
    pass_key = await svc.hasher.derive(passphrase, live.passphrase_salt) if passphrase else b""
    try:
        plaintext = decrypt(svc, live, share_key, pass_key)
    except WrongPassphrase:
        async with svc.store.transaction() as tx:
            await lockouts.settle_failure(tx, attempt_id)
            failed = caused_by(caller, "passphrase.failed", "failure", receipt_ref=live.receipt_id)
            await audit.record(tx, svc.audit_key, [failed])
        metrics.PASSPHRASE_FAILURES.inc()
        raise WrongPassphrase(wrong) from None
    async with svc.store.connection() as db:
        await lockouts.forgive(db, live.id, client, attempt_id)
    return plaintext


async def _reserve(
    svc: Services, caller: Caller, live: LiveSecret, client: bytes, share_key: str
) -> int:
    """A slot to check one guess in; waits (bounded) while other guesses hold every slot."""
    for _ in range(RESERVE_TRIES):
        try:
            async with svc.store.transaction() as tx:
                slot = await lockouts.reserve_attempt(tx, live.id, client, svc.lockout)
                if slot.new_lock:
                    locked = caused_by(
                        caller, "passphrase.lockout", "denied", receipt_ref=live.receipt_id
                    )
                    await audit.record(tx, svc.audit_key, [locked])
        except lockouts.SecretGone:
            raise UnknownSecret(share_key) from None
        if slot.locked_for is not None:
            if slot.new_lock:
                metrics.LOCKOUTS.inc()
            raise LockedOut(slot.locked_for)
        if slot.attempt_id is not None:
            return slot.attempt_id
        await asyncio.sleep(RESERVE_PAUSE)
    raise LockedOut(1)


def decrypt(svc: Services, live: LiveSecret, share_key: str, pass_key: bytes) -> bytes:
    """WrongPassphrase if a passphrase secret does not open; SecretUndecryptable if the
    key ring cannot open it at all (an operator problem, not the caller's)."""
    master = master_key(svc, live.key_id)
    try:
        return crypto.open_secret(master, share_key, pass_key, live.ciphertext)
    except crypto.DecryptionError:
        if live.passphrase_salt is None:
            raise SecretUndecryptable("secret did not open with its master key") from None
        raise WrongPassphrase("Incorrect passphrase") from None


def master_key(svc: Services, key_id: int) -> bytes:
    try:
        return svc.keys.master(key_id)
    except crypto.DecryptionError:
        raise SecretUndecryptable("master key missing from the key ring") from None
