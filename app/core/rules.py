"""The rules a create must follow: TTL clamping, size, passphrase policy, length."""

from __future__ import annotations

import re

from app.config import Limits, Plan
from app.core.context import Caller
from app.core.errors import InvalidRequest
from app.core.passwords import CharacterSets

# Upstream's deliberately simple pattern (any TLD length here).
EMAIL = re.compile(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,}")


def clamp_ttl(limits: Limits, plan: Plan, ttl: int | None) -> int:
    """Clamped into [minimum, plan maximum], never rejected; missing means the default."""
    if ttl is None:
        ttl = limits.ttl_default
    return max(limits.ttl_min, min(ttl, plan.ttl_max))


def check_size(plan: Plan, secret: str) -> None:
    """The limit counts UTF-8 bytes, as that is what is stored."""
    if len(secret.encode()) > plan.max_secret_bytes:
        raise InvalidRequest(
            f"Secret content must be no more than {plan.max_secret_bytes} bytes long"
        )


def check_passphrase(limits: Limits, passphrase: str) -> None:
    if not passphrase:
        if limits.passphrase_required:
            raise InvalidRequest("A passphrase is required for all secrets")
        return
    if len(passphrase) < limits.passphrase_min:
        raise InvalidRequest(f"Passphrase must be at least {limits.passphrase_min} characters long")
    if len(passphrase) > limits.passphrase_max:
        raise InvalidRequest(
            f"Passphrase must be no more than {limits.passphrase_max} characters long"
        )


def check_recipients(caller: Caller, recipients: tuple[str, ...]) -> str | None:
    """The one address upstream would mail (the first); e-mail needs an account."""
    if not recipients:
        return None
    if caller.anonymous:
        raise InvalidRequest("An account is required to send emails.")
    found = EMAIL.search(recipients[0])
    if found is None:
        raise InvalidRequest(f"Undeliverable email address: {recipients[0][:254]}")
    return found.group(0)


def obscure_email(address: str) -> str:
    """Upstream's shape: tom@example.com -> to*****m@e*****.com."""
    local, _, domain = address.partition("@")
    name, _, tld = domain.rpartition(".")
    return f"{local[:2]}*****{local[-1:]}@{name[:1]}*****.{tld}"


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def check_share_domain(site_host: str, allowed: tuple[str, ...], domain: str | None) -> str | None:
    """One of the operator's share domains, or None for this service's own host."""
    if not domain:
        return None
    domain = domain.strip().lower()
    if not _HOSTNAME.match(domain):
        raise InvalidRequest("Invalid share domain")
    if domain == site_host:
        return None
    if domain not in allowed:
        raise InvalidRequest(f"Unknown domain: {domain}")
    return domain


def check_length(limits: Limits, length: int | None, sets: CharacterSets) -> int:
    if length is None:
        length = limits.generate_length
    shortest = max(len(sets.alphabets()), 1)
    if not shortest <= length <= limits.generate_max_length:
        raise InvalidRequest(f"Length must be between {shortest} and {limits.generate_max_length}")
    return length
