"""Message catalogs (one JSON file per locale) and picking a locale from Accept-Language."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOGS = Path(__file__).parent / "locales"


@dataclass(frozen=True)
class Translator:
    locale: str
    messages: dict[str, str]

    def __call__(self, key: str) -> str:
        """Missing keys show as themselves, so a gap is visible, never a crash."""
        return self.messages.get(key, key)


@cache
def catalog(locale: str) -> dict[str, str]:
    messages: dict[str, str] = json.loads((CATALOGS / f"{locale}.json").read_text())
    return messages


def available() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in CATALOGS.glob("*.json")))


def translator(accept_language: str, supported: tuple[str, ...]) -> Translator:
    locale = pick(accept_language, supported)
    return Translator(locale, catalog(locale))


def pick(accept_language: str, supported: tuple[str, ...]) -> str:
    """The best supported language by the header's q-values; else the first supported."""
    choices = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        choices.append((-quality, position, tag.strip().lower()))
    for negative_quality, _, tag in sorted(choices):
        base = tag.split("-")[0]
        if negative_quality < 0 and base in supported:
            return base
    return supported[0]
