"""The rules a create must follow: TTL clamping, size, passphrase policy, length."""

from __future__ import annotations

import re

from app.config import Limits
from app.core.context import Caller
from app.core.errors import InvalidRequest
from app.core.passwords import CharacterSets


def clamp_ttl(limits: Limits, ttl: int | None) -> int:
    """Clamped into [minimum, plan maximum], never rejected; missing means the default."""
    if ttl is None:
        ttl = limits.ttl_default
    return max(limits.ttl_min, min(ttl, limits.ttl_max))


def check_size(limits: Limits, secret: str) -> None:
    """The limit counts UTF-8 bytes, as that is what is stored."""
    if len(secret.encode()) > limits.max_secret_bytes:
        raise InvalidRequest(
            f"Secret content must be no more than {limits.max_secret_bytes} bytes long"
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


def check_recipients(caller: Caller, recipients: tuple[str, ...]) -> None:
    """Sending e-mail needs an account (upstream's rule, and an anti-spam measure)."""
    if recipients and caller.anonymous:
        raise InvalidRequest("An account is required to send emails.")


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def check_share_domain(site_host: str, domain: str | None) -> str | None:
    """Links are built on this service's own host; custom share domains are not registered
    yet, so any other domain is refused rather than silently ignored."""
    if not domain:
        return None
    domain = domain.strip().lower()
    if not _HOSTNAME.match(domain):
        raise InvalidRequest("Invalid share domain")
    if domain == site_host:
        return None
    raise InvalidRequest(f"Unknown domain: {domain}")


def check_length(limits: Limits, length: int | None, sets: CharacterSets) -> int:
    if length is None:
        length = limits.generate_length
    shortest = max(len(sets.alphabets()), 1)
    if not shortest <= length <= limits.generate_max_length:
        raise InvalidRequest(f"Length must be between {shortest} and {limits.generate_max_length}")
    return length
