"""generate_password: coverage of every enabled set, no look-alikes, fallback, lengths."""

from __future__ import annotations

import string

import pytest

from app.core.passwords import CharacterSets, generate_password

# Written out here rather than taken from the module under test.
AMBIGUOUS = set("ilo1IO0")
UPPER = set(string.ascii_uppercase) - AMBIGUOUS
LOWER = set(string.ascii_lowercase) - AMBIGUOUS
DIGITS = set(string.digits) - AMBIGUOUS
SYMBOLS = set("!@#$%^&*()_-+=[]{}|:;\"'<>,.?/~`")
SAMPLES = 500

SET_CHOICES = [
    CharacterSets(),
    CharacterSets(symbols=False),
    CharacterSets(uppercase=False, lowercase=False, symbols=False),
    CharacterSets(lowercase=False, numbers=False),
    CharacterSets(uppercase=False, numbers=False, symbols=False),
    CharacterSets(uppercase=False, lowercase=False, numbers=False),
]


def expected_sets(sets: CharacterSets) -> list[set[str]]:
    chosen = [
        (sets.uppercase, UPPER),
        (sets.lowercase, LOWER),
        (sets.numbers, DIGITS),
        (sets.symbols, SYMBOLS),
    ]
    return [chars for on, chars in chosen if on]


@pytest.mark.parametrize("sets", SET_CHOICES, ids=repr)
@pytest.mark.parametrize("length", [4, 12])
def test_every_enabled_set_in_every_sample(sets: CharacterSets, length: int) -> None:
    enabled = expected_sets(sets)
    allowed = set().union(*enabled)
    for _ in range(SAMPLES):
        password = generate_password(length, sets)
        assert len(password) == length
        assert set(password) <= allowed, password
        for chars in enabled:
            assert set(password) & chars, (password, sorted(chars))


def test_no_ambiguous_characters_by_default() -> None:
    seen = set().union(*(generate_password(64, CharacterSets()) for _ in range(SAMPLES)))
    assert not seen & AMBIGUOUS
    assert seen == UPPER | LOWER | DIGITS | SYMBOLS


def test_ambiguous_characters_allowed_when_not_excluded() -> None:
    sets = CharacterSets(exclude_ambiguous=False)
    seen = set().union(*(generate_password(64, sets) for _ in range(SAMPLES)))
    assert seen >= AMBIGUOUS
    assert seen <= set(string.ascii_letters + string.digits) | SYMBOLS


@pytest.mark.parametrize("exclude_ambiguous", [True, False])
def test_all_sets_off_falls_back_to_letters_and_digits(exclude_ambiguous: bool) -> None:
    sets = CharacterSets(False, False, False, False, exclude_ambiguous=exclude_ambiguous)
    seen: set[str] = set()
    for _ in range(SAMPLES):
        password = generate_password(16, sets)
        assert len(password) == 16
        assert password.isalnum()
        assert password.isascii()
        seen |= set(password)
    assert seen & UPPER
    assert seen & LOWER
    assert seen & DIGITS


@pytest.mark.parametrize("sets", SET_CHOICES, ids=repr)
@pytest.mark.parametrize("length", [4, 5, 12, 20, 64, 128])
def test_length_is_respected(sets: CharacterSets, length: int) -> None:
    assert {len(generate_password(length, sets)) for _ in range(50)} == {length}


@pytest.mark.parametrize("sets", [CharacterSets(), CharacterSets(symbols=False)], ids=repr)
def test_all_default_letters_and_digits_appear(sets: CharacterSets) -> None:
    """A coarse uniformity check: 2000 passwords use each of the 55 non-symbol characters."""
    seen = set().union(*(generate_password(12, sets) for _ in range(2000)))
    assert len(UPPER | LOWER | DIGITS) == 55
    assert seen - SYMBOLS == UPPER | LOWER | DIGITS


def test_passwords_differ() -> None:
    passwords = {generate_password(12, CharacterSets()) for _ in range(SAMPLES)}
    assert len(passwords) == SAMPLES
