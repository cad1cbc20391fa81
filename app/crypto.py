"""Sealing secrets with secretbox, the master key ring, link keys and passphrase keys.

Pure functions, no I/O. Every box key is derived per secret from a master key and
the secret's own link key (and, when set, the passphrase through argon2id), so a
dump of the database plus the master keys still opens nothing without the link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils

KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
LINK_KEY_LENGTH = 50  # random base-36 digits: 258 bits, as many characters as 256 bits take
_MIN_DISTINCT_BYTES = 8  # 32 random bytes have ~31 distinct values; "aaaa..." has 1
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_UNBIASED = 7 * len(_ALPHABET)  # 252: the bytes that map evenly onto the digits
_DIGIT_OF_BYTE = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(_UNBIASED)) + bytes(
    256 - _UNBIASED
)
_BIASED_BYTES = bytes(range(_UNBIASED, 256))
_DRAW = LINK_KEY_LENGTH + 6  # one draw nearly always keeps 50 of its bytes
_SECRET_PERSON = b"ots.secret.v1"
_RECEIPT_PERSON = b"ots.receipt.v1"
_LOOKUP_PERSON = b"ots.lookup.v1"
_CLIENT_PERSON = b"ots.client.v1"
_TOKEN_PERSON = b"ots.token.v1"
_OWNER_PERSON = b"ots.owner.v1"
_AUDIT_PERSON = b"ots.audit.v1"
_CSRF_PERSON = b"ots.csrf.v1"
_NOTIFY_PERSON = b"ots.notify.v1"


class DecryptionError(Exception):
    """A box did not open: wrong key, wrong passphrase or tampered bytes."""


class KeyRingError(ValueError):
    """The configured key ring is missing, malformed or unsafe."""


@dataclass(frozen=True)
class KeyRing:
    """The index key (for keyed lookups, never rotated) and numbered master keys."""

    index_key: bytes
    master_keys: dict[int, bytes]

    @property
    def active_id(self) -> int:
        """New secrets are sealed under the newest (highest-numbered) key."""
        return max(self.master_keys)

    def master(self, key_id: int) -> bytes:
        try:
            return self.master_keys[key_id]
        except KeyError:
            raise DecryptionError(f"master key {key_id} is not in the key ring") from None


@dataclass(frozen=True)
class PassphraseCost:
    """argon2id cost; the default is OWASP's floor (19 MiB, 2 passes)."""

    opslimit: int = 2
    memlimit: int = 19 * 1024 * 1024


def parse_keyring(text: str) -> KeyRing:
    """Parse ``idx:<b64> 1:<b64> 2:<b64>`` (commas, spaces or newlines between entries)."""
    index_key: bytes | None = None
    masters: dict[int, bytes] = {}
    for entry in text.replace(",", " ").split():
        name, sep, encoded = entry.partition(":")
        if not sep:
            raise KeyRingError("each key ring entry must look like NAME:BASE64")
        key = _decode_key(name, encoded)
        if name == "idx":
            index_key = key
        elif name.isdigit() and 0 < int(name) < 2**15:
            masters[int(name)] = key
        else:
            raise KeyRingError(f"key name {name!r} is neither 'idx' nor a number 1-32767")
    if index_key is None or not masters:
        raise KeyRingError("the key ring needs one 'idx' key and at least one numbered key")
    return KeyRing(index_key=index_key, master_keys=masters)


def _decode_key(name: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"key {name!r} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"key {name!r} must decode to {KEY_BYTES} bytes, not {len(key)}")
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        raise KeyRingError(f"key {name!r} looks like a placeholder, not random bytes")
    return key


def generate_keyring_text() -> str:
    """A fresh key ring in the format parse_keyring reads."""
    fresh = (base64.b64encode(nacl.utils.random(KEY_BYTES)).decode() for _ in range(2))
    return "idx:{} 1:{}\n".format(*fresh)


def new_link_key() -> str:
    """LINK_KEY_LENGTH random base-36 digits (258 bits), each drawn alone: random bytes
    below 252 (7 x 36) map evenly onto the 36 digits, the rest are dropped. Done in C
    (bytes.translate); converting a 256-bit integer digit by digit in Python took 5.7
    µs a key, two keys a conceal, 4 % of its samples under load (now 0.9 µs)."""
    digits = b""
    while len(digits) < LINK_KEY_LENGTH:
        digits += os.urandom(_DRAW).translate(_DIGIT_OF_BYTE, _BIASED_BYTES)
    return digits[:LINK_KEY_LENGTH].decode()


def is_link_key(text: str) -> bool:
    return 0 < len(text) <= 2 * LINK_KEY_LENGTH and all(c in _ALPHABET for c in text)


def lookup_id(ring: KeyRing, link_key: str) -> bytes:
    """The row id for a link key: a keyed hash, so the database never holds the key."""
    return _blake(ring.index_key, link_key.encode(), _LOOKUP_PERSON)


def client_ref(ring: KeyRing, client: str) -> bytes:
    """A keyed hash of a client address, for counting attempts without storing IPs."""
    return _blake(ring.index_key, client.encode(), _CLIENT_PERSON)


def new_token() -> str:
    """An API token: 256 random bits, shown once to the operator, stored only as a digest."""
    return new_link_key()


def token_digest(ring: KeyRing, token: str) -> bytes:
    return _blake(ring.index_key, token.encode(), _TOKEN_PERSON)


def audit_key(ring: KeyRing) -> bytes:
    """The key of the audit trail's hash chains (never rotated, like the index key)."""
    return _blake(ring.index_key, b"", _AUDIT_PERSON)


def csrf_key(ring: KeyRing) -> bytes:
    """The key of the page forms' CSRF tokens."""
    return _blake(ring.index_key, b"", _CSRF_PERSON)


def seal_for_owner(master: bytes, plaintext: bytes) -> bytes:
    """Seal an account's receipt key under the master key alone, for its receipt listing."""
    return nacl.secret.SecretBox(_blake(master, b"", _OWNER_PERSON)).encrypt(plaintext)


def open_for_owner(master: bytes, sealed: bytes) -> bytes:
    return _open(nacl.secret.SecretBox(_blake(master, b"", _OWNER_PERSON)), sealed)


def seal_for_notify(master: bytes, plaintext: bytes) -> bytes:
    """Seal what only the notification worker may read (a recipient's mail, a webhook
    signing secret) under the master key alone, apart from every other box."""
    return nacl.secret.SecretBox(_blake(master, b"", _NOTIFY_PERSON)).encrypt(plaintext)


def open_for_notify(master: bytes, sealed: bytes) -> bytes:
    return _open(nacl.secret.SecretBox(_blake(master, b"", _NOTIFY_PERSON)), sealed)


def new_salt() -> bytes:
    return nacl.utils.random(SALT_BYTES)


def passphrase_key(passphrase: str, salt: bytes, cost: PassphraseCost) -> bytes:
    """argon2id over the passphrase; CPU and memory heavy, so callers run it off the loop."""
    return nacl.pwhash.argon2id.kdf(
        KEY_BYTES, passphrase.encode(), salt, opslimit=cost.opslimit, memlimit=cost.memlimit
    )


def seal_secret(master: bytes, link_key: str, pass_key: bytes, plaintext: bytes) -> bytes:
    return _box(master, link_key, pass_key, _SECRET_PERSON).encrypt(plaintext)


def open_secret(master: bytes, link_key: str, pass_key: bytes, sealed: bytes) -> bytes:
    return _open(_box(master, link_key, pass_key, _SECRET_PERSON), sealed)


def seal_for_receipt(master: bytes, receipt_key: str, plaintext: bytes) -> bytes:
    """Seal something (the share key) so only the receipt key's holder can open it."""
    return _box(master, receipt_key, b"", _RECEIPT_PERSON).encrypt(plaintext)


def open_for_receipt(master: bytes, receipt_key: str, sealed: bytes) -> bytes:
    return _open(_box(master, receipt_key, b"", _RECEIPT_PERSON), sealed)


def _box(master: bytes, link_key: str, pass_key: bytes, person: bytes) -> nacl.secret.SecretBox:
    return nacl.secret.SecretBox(_blake(master, link_key.encode() + pass_key, person))


def _open(box: nacl.secret.SecretBox, sealed: bytes) -> bytes:
    try:
        return box.decrypt(sealed)
    except nacl.exceptions.CryptoError:
        raise DecryptionError("box did not open") from None


def _blake(key: bytes, data: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(data, key=key, person=person, digest_size=KEY_BYTES).digest()
