"""Sealing, key derivation, key ring parsing and link keys."""

from __future__ import annotations

import base64
import re
from collections import Counter

import pytest

from app import crypto
from tests.factories import SECOND_KEY, TEST_KEYS

RING = crypto.parse_keyring(TEST_KEYS)
MASTER = RING.master(1)
CHEAP = crypto.PassphraseCost(opslimit=1, memlimit=8192 * 1024)


def test_round_trip() -> None:
    link = crypto.new_link_key()
    sealed = crypto.seal_secret(MASTER, link, b"", b"hello")
    assert b"hello" not in sealed
    assert crypto.open_secret(MASTER, link, b"", sealed) == b"hello"


def test_each_seal_uses_a_fresh_nonce() -> None:
    link = crypto.new_link_key()
    assert crypto.seal_secret(MASTER, link, b"", b"x") != crypto.seal_secret(
        MASTER, link, b"", b"x"
    )


@pytest.mark.parametrize("part", ["link", "master", "passphrase", "tamper"])
def test_anything_wrong_fails_to_open(part: str) -> None:
    link = crypto.new_link_key()
    salt = crypto.new_salt()
    pass_key = crypto.passphrase_key("correct-horse-1", salt, CHEAP)
    sealed = crypto.seal_secret(MASTER, link, pass_key, b"hello")
    master, key, pk = MASTER, link, pass_key
    if part == "link":
        key = crypto.new_link_key()
    elif part == "master":
        master = crypto.parse_keyring(TEST_KEYS + " " + SECOND_KEY).master(2)
    elif part == "passphrase":
        pk = crypto.passphrase_key("wrong-horse-1", salt, CHEAP)
    else:
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(crypto.DecryptionError):
        crypto.open_secret(master, key, pk, sealed)


def test_receipt_seal_opens_only_with_the_receipt_key() -> None:
    receipt, share = crypto.new_link_key(), crypto.new_link_key()
    sealed = crypto.seal_for_receipt(MASTER, receipt, share.encode())
    assert crypto.open_for_receipt(MASTER, receipt, sealed) == share.encode()
    with pytest.raises(crypto.DecryptionError):
        crypto.open_for_receipt(MASTER, share, sealed)
    with pytest.raises(crypto.DecryptionError):  # a secret box is not a receipt box
        crypto.open_secret(MASTER, receipt, b"", sealed)


def test_lookup_id_is_keyed_and_stable() -> None:
    key = crypto.new_link_key()
    other_ring = crypto.parse_keyring(crypto.generate_keyring_text())
    assert crypto.lookup_id(RING, key) == crypto.lookup_id(RING, key)
    assert crypto.lookup_id(RING, key) != crypto.lookup_id(other_ring, key)
    assert key.encode() not in crypto.lookup_id(RING, key)
    assert len(crypto.lookup_id(RING, key)) == 32


def test_link_keys_are_256_bit_base36() -> None:
    keys = {crypto.new_link_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(re.fullmatch(r"[0-9a-z]{50}", k) for k in keys)
    assert crypto.is_link_key(next(iter(keys)))
    for bad in ("", "ABC", "a/b", "x" * 101, "é"):
        assert not crypto.is_link_key(bad)


def test_link_key_digits_are_uniform() -> None:
    """Each digit equally likely, in every position: 2,000 keys, 100,000 digits, about
    2,778 of each (sd 52). A byte-modulo-36 draw without dropping the top four byte
    values gives the digits 0 to 3 about 3,125 each (8 in 256)."""
    keys = [crypto.new_link_key() for _ in range(2000)]
    counts = Counter("".join(keys))
    assert len(counts) == 36
    assert all(2778 - 300 < n < 2778 + 300 for n in counts.values()), counts
    assert len(Counter(k[0] for k in keys)) == 36  # the first digit too


def test_newest_key_seals() -> None:
    ring = crypto.parse_keyring(TEST_KEYS + "\n" + SECOND_KEY)
    assert ring.active_id == 2
    assert set(ring.master_keys) == {1, 2}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "needs one 'idx' key"),
        ("1:" + _b64(bytes(range(32))), "needs one 'idx' key"),
        ("idx:" + _b64(bytes(range(32))), "needs one 'idx' key"),
        ("idx:notbase64!! 1:" + _b64(bytes(range(32))), "not valid base64"),
        ("idx:" + _b64(bytes(range(16))) + " 1:" + _b64(bytes(range(32))), "32 bytes"),
        ("idx:" + _b64(b"a" * 32) + " 1:" + _b64(bytes(range(32))), "placeholder"),
        ("idx:" + _b64(bytes(range(32))) + " 0:" + _b64(bytes(range(32))), "neither"),
        ("idx:" + _b64(bytes(range(32))) + " one:" + _b64(bytes(range(32))), "neither"),
        ("idx " + _b64(bytes(range(32))), "NAME:BASE64"),
    ],
)
def test_bad_key_rings_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(crypto.KeyRingError, match=re.escape(complaint)):
        crypto.parse_keyring(text)


def test_generated_key_ring_parses() -> None:
    ring = crypto.parse_keyring(crypto.generate_keyring_text())
    assert ring.active_id == 1
    assert ring.index_key != ring.master(1)
