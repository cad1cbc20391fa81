"""Message catalogs: every served language is complete, and Accept-Language picks well."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.web import i18n
from tests.factories import TEST_KEYS


def test_every_served_locale_has_a_complete_catalog() -> None:
    served = Settings.from_env({"DATABASE_URL": "postgresql://x", "OTS_KEYS": TEST_KEYS}).locales
    assert set(served) <= set(i18n.available())
    english = set(i18n.catalog("en"))
    for locale in i18n.available():
        assert set(i18n.catalog(locale)) == english, locale
        assert all(text.strip() for text in i18n.catalog(locale).values()), locale


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "de"),
        ("fr, en;q=0.8, de;q=0.9", "de"),
        ("en;q=0.1, de;q=0", "en"),
        ("", "en"),
        ("de;q=nonsense", "en"),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert i18n.pick(header, ("en", "de")) == expected
