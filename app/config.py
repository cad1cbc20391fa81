"""Settings, read once from the environment (and mounted files) and validated."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.crypto import KeyRing, KeyRingError, PassphraseCost, parse_keyring


class ConfigError(ValueError):
    """Configuration that the service refuses to start with."""


@dataclass(frozen=True)
class Limits:
    """What a caller may ask for; anonymous callers get these defaults."""

    ttl_min: int = 60
    ttl_max: int = 7 * 86400
    ttl_default: int = 7 * 86400
    max_secret_bytes: int = 10_000
    passphrase_min: int = 8
    passphrase_max: int = 128
    passphrase_required: bool = False
    generate_length: int = 12
    generate_max_length: int = 128
    generate_symbols: bool = True


@dataclass(frozen=True)
class Lockout:
    """Passphrase brute-force limits, counted in PostgreSQL so every pod agrees."""

    per_client: int = 5
    per_secret: int = 20
    window_seconds: int = 600
    lock_seconds: int = 1800


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    pool_max: int = 10
    acquire_timeout: float = 2.0
    connect_timeout: float = 3.0
    command_timeout: float = 5.0
    statement_timeout_ms: int = 3000
    lock_timeout_ms: int = 1000
    idle_in_transaction_timeout_ms: int = 10_000


@dataclass(frozen=True)
class Settings:
    database: DatabaseConfig
    keys: KeyRing
    base_url: str = "http://127.0.0.1:7143"
    host: str = "127.0.0.1"
    port: int = 7143
    limits: Limits = field(default_factory=Limits)
    lockout: Lockout = field(default_factory=Lockout)
    passphrase_cost: PassphraseCost = field(default_factory=PassphraseCost)
    # How many argon2id computations may run at once (each holds memlimit bytes).
    passphrase_workers: int = max(os.cpu_count() or 1, 1)
    expiry_interval: float = 10.0
    expiry_batch: int = 500
    generated_value_window: int = 60
    max_body_bytes: int = 256 * 1024
    locales: tuple[str, ...] = ("en",)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        host = env.get("OTS_HOST", "127.0.0.1")
        port = _int(env, "OTS_PORT", 7143, 1, 65535)
        limits = Limits(
            max_secret_bytes=_int(env, "OTS_MAX_SECRET_BYTES", 10_000, 1, 16 * 2**20),
            passphrase_min=_int(env, "OTS_PASSPHRASE_MIN_LENGTH", 8, 1, 128),
            passphrase_required=_bool(env, "OTS_PASSPHRASE_REQUIRED", False),
            generate_symbols=_bool(env, "OTS_GENERATE_SYMBOLS", True),
        )
        return cls(
            database=DatabaseConfig(
                url=_required(env, "DATABASE_URL"),
                pool_max=_int(env, "OTS_DB_POOL_MAX", 10, 1, 1000),
                acquire_timeout=_float(env, "OTS_DB_ACQUIRE_TIMEOUT", 2.0),
            ),
            keys=load_keyring(env),
            base_url=env.get("OTS_BASE_URL", f"http://{host}:{port}").rstrip("/"),
            host=host,
            port=port,
            limits=limits,
            expiry_interval=_float(env, "OTS_EXPIRY_INTERVAL", 10.0),
            max_body_bytes=body_limit(limits.max_secret_bytes),
        )


def body_limit(max_secret_bytes: int) -> int:
    """Room for the largest secret even if every byte arrives JSON-escaped (\\uXXXX)."""
    return max(256 * 1024, 6 * max_secret_bytes + 64 * 1024)


def load_keyring(env: Mapping[str, str]) -> KeyRing:
    """Keys from OTS_KEYS_FILE (a mounted Kubernetes Secret) or OTS_KEYS; never a default."""
    path = env.get("OTS_KEYS_FILE")
    try:
        text = Path(path).read_text() if path else env.get("OTS_KEYS")
    except OSError as exc:
        raise ConfigError(f"cannot read OTS_KEYS_FILE: {exc.strerror}") from None
    if not text:
        raise ConfigError("no key ring: set OTS_KEYS_FILE (or OTS_KEYS); see README")
    try:
        return parse_keyring(text)
    except KeyRingError as exc:
        raise ConfigError(f"bad key ring: {exc}") from None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number of seconds")
    return value


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Security switches must not silently mean "off" on a typo: unknown words are refused."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")
