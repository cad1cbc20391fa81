"""Generated passwords: CSPRNG, one character of each enabled set, no ambiguous characters."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

AMBIGUOUS = frozenset("ilo1IO0")
SYMBOLS = "!@#$%^&*()_-+=[]{}|:;\"'<>,.?/~`"


@dataclass(frozen=True)
class CharacterSets:
    uppercase: bool = True
    lowercase: bool = True
    numbers: bool = True
    symbols: bool = True
    exclude_ambiguous: bool = True

    def alphabets(self) -> list[str]:
        chosen = [
            (self.uppercase, string.ascii_uppercase),
            (self.lowercase, string.ascii_lowercase),
            (self.numbers, string.digits),
            (self.symbols, SYMBOLS),
        ]
        drop = AMBIGUOUS if self.exclude_ambiguous else frozenset()
        return ["".join(c for c in chars if c not in drop) for on, chars in chosen if on]


# With every set switched off, fall back to letters and digits without look-alikes.
_FALLBACK = CharacterSets(symbols=False)


def generate_password(length: int, sets: CharacterSets) -> str:
    """A password of `length` characters holding at least one of each enabled set."""
    alphabets = sets.alphabets() or _FALLBACK.alphabets()
    everything = "".join(alphabets)
    chars = [secrets.choice(alphabet) for alphabet in alphabets]
    chars += [secrets.choice(everything) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
