"""Expiry inside a lookup by key, written so that no index can serve it."""

from __future__ import annotations


def alive(alias: str) -> str:
    """`alias`'s row has time left: `expires_at > now()` written as time left, which no
    index matches, so a statement finds its rows by their key and then checks their time.

    Why: statistics taken before a mass expiry say almost no row expires after now(). On
    that guess PostgreSQL served `id = $1 AND expires_at > now()` from the expires_at
    index instead of the key's, reading every live row and every one deleted since the
    last vacuum for each lookup: while a million rows expired, a reveal's first read went
    from p90 13 to 29 ms, p99 19 to 59 (bench/FINDINGS.md, thirteenth round;
    tests/test_lookup_plans.py)."""
    return f"{alias}.expires_at - now() > interval '0'"
