"""Domain errors; the HTTP edges translate them to status codes and bodies."""

from __future__ import annotations


class DomainError(Exception):
    """Base for errors a caller caused or may act on; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, str | int]:
        """Extra fields a caller may act on (never secret material)."""
        return {}


class InvalidRequest(DomainError):
    """The request breaks a rule (empty secret, passphrase policy, size)."""


class UnknownSecret(DomainError):
    """No live secret or receipt for that key (never existed, consumed, or expired)."""

    def __init__(self, key: str) -> None:
        super().__init__("Unknown secret")
        self.key = key

    def details(self) -> dict[str, str | int]:
        return {"secret_key": self.key}


class WrongPassphrase(DomainError):
    """The passphrase did not open the secret; the failure has been counted."""


class LockedOut(DomainError):
    """Too many wrong passphrases for this secret: no attempt is checked until the lock ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many incorrect passphrase attempts. Please try again later.")
        self.retry_after = retry_after

    def details(self) -> dict[str, str | int]:
        return {"retry_after": self.retry_after}


class RateLimited(DomainError):
    """Too many requests of one kind from one client in the current window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Cripes! You have been rate limited.")
        self.retry_after = retry_after

    def details(self) -> dict[str, str | int]:
        return {"retry_after": self.retry_after}


class NotAuthorized(DomainError):
    """Credentials were given and are not valid, or the endpoint needs an account."""

    def __init__(self) -> None:
        super().__init__("Not authorized")


class Forbidden(DomainError):
    """Valid credentials, but this account may not do that."""

    def __init__(self) -> None:
        super().__init__("Forbidden")


class SecretUndecryptable(Exception):
    """A stored secret cannot be opened with the configured key ring (operator problem)."""
