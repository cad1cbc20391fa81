"""Settings, read once from the environment (and mounted files) and validated."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from app.crypto import KeyRing, KeyRingError, PassphraseCost, parse_keyring

IPNetwork = IPv4Network | IPv6Network


class ConfigError(ValueError):
    """Configuration that the service refuses to start with."""


DAY = 86400


@dataclass(frozen=True)
class Plan:
    """What one kind of caller may store: anonymous callers, or an account's plan."""

    name: str
    ttl_max: int
    max_secret_bytes: int
    rate_limited: bool = True


# Upstream's plans: TTL 7/14/30 days; paid (identity) accounts skip the rate limits.
DEFAULT_PLANS = (
    Plan("anonymous", 7 * DAY, 10_000),
    Plan("basic", 14 * DAY, 100_000),
    Plan("identity", 30 * DAY, 1_000_000, rate_limited=False),
)
ACCOUNT_PLANS = ("basic", "identity")

# Requests per client and event in one window (upstream's defaults, 20-minute windows).
DEFAULT_RATE_LIMITS = (
    ("create_secret", 1000),
    ("show_secret", 1000),
    ("show_metadata", 1000),
    ("burn_secret", 1000),
    ("email_recipient", 50),
)


@dataclass(frozen=True)
class RateLimits:
    window_seconds: int = 1200
    per_event: tuple[tuple[str, int], ...] = DEFAULT_RATE_LIMITS

    def limit(self, event: str) -> int:
        return self._by_event[event]

    @cached_property
    def _by_event(self) -> dict[str, int]:
        # Asked on every counted request now (app/core/limits.throttle), not only on refusals.
        return dict(self.per_event)


@dataclass(frozen=True)
class Limits:
    """Rules for every create; sizes and maximum TTLs come from the caller's plan."""

    ttl_min: int = 60
    ttl_default: int = 7 * DAY
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


# The sweeper's own pool (app/expiry.py), beside the requests' pool_max: a process opens
# at most pool_max + SWEEPER_CONNECTIONS connections.
SWEEPER_CONNECTIONS = 1


# Where webhooks may never go (SSRF): loopback, private, link-local (cloud metadata at
# 169.254.169.254), CGNAT, "this network", multicast and reserved ranges.
DEFAULT_WEBHOOK_DENY = tuple(
    ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
        "240.0.0.0/4", "::/96", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "2001::/32",
        "2002::/16", "fc00::/7", "fec0::/10", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip


SMTPS_PORT = 465  # where relays speak TLS from the first byte (RFC 8314)


@dataclass(frozen=True)
class Smtp:
    """The relay notification mail goes through; no host means no mail is sent."""

    host: str = ""
    port: int = 587
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    # TLS from the first byte (SMTPS, RFC 8314), as relays on port 465 expect; then no
    # STARTTLS.
    implicit_tls: bool = False
    sender: str = "ots@localhost"
    timeout: float = 10.0
    ca_file: str = ""  # CA bundle the relay's certificate must chain to (default: system)


@dataclass(frozen=True)
class Notify:
    """The outbox worker: how often it looks, how it retries, how long a delivery may take."""

    smtp: Smtp = field(default_factory=Smtp)
    max_attempts: int = 8
    backoff_base: float = 30.0  # the first retry's delay; doubled each time, with jitter
    backoff_max: float = 6 * 3600.0
    poll_interval: float = 2.0
    batch: int = 20
    lease_seconds: float = 60.0  # above the longest delivery, or a slow one is sent twice
    webhook_timeout: float = 10.0
    webhook_deny: tuple[IPNetwork, ...] = DEFAULT_WEBHOOK_DENY
    retention_seconds: float = 7 * DAY  # delivered and dead rows are kept this long


@dataclass(frozen=True)
class Settings:
    database: DatabaseConfig
    keys: KeyRing
    base_url: str = "http://127.0.0.1:7143"
    host: str = "127.0.0.1"
    port: int = 7143
    limits: Limits = field(default_factory=Limits)
    plans: tuple[Plan, ...] = DEFAULT_PLANS
    rate_limits: RateLimits = field(default_factory=RateLimits)
    lockout: Lockout = field(default_factory=Lockout)
    # Peers whose X-Forwarded-For is believed (the load balancer, the ingress).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Hosts a sender may choose for the share link, besides this service's own.
    share_domains: tuple[str, ...] = ()
    passphrase_cost: PassphraseCost = field(default_factory=PassphraseCost)
    # How many argon2id computations may run at once (each holds memlimit bytes, 19 MiB).
    passphrase_workers: int = 2
    expiry_interval: float = 10.0
    # Rows per sweep statement (a read takes four statements' worth: app/expiry.py says why
    # 250). A statement holds the event loop for its hashing and encoding (about 3.7 µs a
    # row, seventh round) and a core of PostgreSQL while it runs: in batches of 1,000, a
    # sweep raised the saturated load's p99 by 61 % at 14,000 rows/s, in batches of 250 by
    # 24 to 42 % (bench/FINDINGS.md, eleventh round).
    expiry_batch: int = 250
    # Rows a second a sweep may purge (0: no limit); Pace in app/expiry.py says why.
    expiry_rate: int = 25_000
    ready_timeout: float = 1.0  # how long /readyz waits for PostgreSQL
    shutdown_timeout: float = 20.0  # how long SIGTERM waits for requests in flight
    log_format: str = "text"
    generated_value_window: int = 60
    max_body_bytes: int = 256 * 1024
    # The page languages (app/web/locales); /api/v2/supported-locales reports the same.
    locales: tuple[str, ...] = ("en", "de")
    notify: Notify = field(default_factory=Notify)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        host = env.get("OTS_HOST", "127.0.0.1")
        port = _int(env, "OTS_PORT", 7143, 1, 65535)
        limits = Limits(
            passphrase_min=_int(env, "OTS_PASSPHRASE_MIN_LENGTH", 8, 1, 128),
            passphrase_required=_bool(env, "OTS_PASSPHRASE_REQUIRED", False),
            generate_symbols=_bool(env, "OTS_GENERATE_SYMBOLS", True),
        )
        plans = tuple(_plan(env, plan) for plan in DEFAULT_PLANS)
        return cls(
            database=DatabaseConfig(
                url=secret_setting(env, "DATABASE_URL"),
                pool_max=_int(env, "OTS_DB_POOL_MAX", 10, 1, 1000),
                acquire_timeout=_float(env, "OTS_DB_ACQUIRE_TIMEOUT", 2.0),
            ),
            keys=load_keyring(env),
            base_url=env.get("OTS_BASE_URL", f"http://{host}:{port}").rstrip("/"),
            host=host,
            port=port,
            limits=limits,
            plans=plans,
            rate_limits=_rate_limits(env),
            trusted_proxies=_networks(env.get("OTS_TRUSTED_PROXIES", "")),
            share_domains=_domains(env.get("OTS_SHARE_DOMAINS", "")),
            expiry_interval=_float(env, "OTS_EXPIRY_INTERVAL", 10.0),
            expiry_batch=_int(env, "OTS_EXPIRY_BATCH", 250, 1, 100_000),
            expiry_rate=_int(env, "OTS_EXPIRY_RATE", 25_000, 0, 10_000_000),
            ready_timeout=_float(env, "OTS_READY_TIMEOUT", 1.0),
            passphrase_workers=_int(env, "OTS_PASSPHRASE_WORKERS", default_hash_workers(), 1, 64),
            shutdown_timeout=_float(env, "OTS_SHUTDOWN_TIMEOUT", 20.0),
            log_format=env.get("OTS_LOG_FORMAT", "text"),
            max_body_bytes=body_limit(max(plan.max_secret_bytes for plan in plans)),
            notify=_notify(env),
        )

    def plan(self, name: str) -> Plan:
        return next(plan for plan in self.plans if plan.name == name)


def default_hash_workers() -> int:
    """One less than the CPUs this process may run on (a container's cpuset), at least 1
    and at most 4. One CPU stays free for the event loop: with every CPU hashing, the
    loop waited up to 48 ms for a core under passphrase load (bench/FINDINGS.md).
    os.cpu_count() would count a big node's cores and let argon2 outgrow the pod's
    memory limit."""
    return max(1, min(len(os.sched_getaffinity(0)) - 1, 4))


def body_limit(max_secret_bytes: int) -> int:
    """Room for the largest secret even if every byte arrives JSON-escaped (\\uXXXX)."""
    return max(256 * 1024, 6 * max_secret_bytes + 64 * 1024)


def _plan(env: Mapping[str, str], default: Plan) -> Plan:
    prefix = f"OTS_PLAN_{default.name.upper()}"
    return Plan(
        name=default.name,
        ttl_max=_int(env, f"{prefix}_TTL_MAX", default.ttl_max, 60, 365 * DAY),
        max_secret_bytes=_int(env, f"{prefix}_MAX_BYTES", default.max_secret_bytes, 1, 16 * 2**20),
        rate_limited=default.rate_limited,
    )


def _notify(env: Mapping[str, str]) -> Notify:
    notify = _notify_settings(env)
    slowest = max(2 * notify.smtp.timeout, notify.webhook_timeout)
    if notify.lease_seconds <= slowest:
        # A delivery still running when its lease ends is taken by another worker too.
        raise ConfigError(f"OTS_NOTIFY_LEASE must be above the slowest delivery ({slowest:g} s)")
    return notify


def _notify_settings(env: Mapping[str, str]) -> Notify:
    deny = env.get("OTS_WEBHOOK_DENY_NETWORKS", "").strip()
    port = _int(env, "OTS_SMTP_PORT", 587, 1, 65535)
    return Notify(
        smtp=Smtp(
            host=env.get("OTS_SMTP_HOST", ""),
            port=port,
            username=env.get("OTS_SMTP_USERNAME", ""),
            password=optional_secret(env, "OTS_SMTP_PASSWORD"),
            starttls=_bool(env, "OTS_SMTP_STARTTLS", True),
            implicit_tls=_bool(env, "OTS_SMTP_IMPLICIT_TLS", port == SMTPS_PORT),
            sender=env.get("OTS_SMTP_FROM", "ots@localhost"),
            timeout=_float(env, "OTS_SMTP_TIMEOUT", 10.0),
            ca_file=env.get("OTS_SMTP_CA_FILE", ""),
        ),
        max_attempts=_int(env, "OTS_NOTIFY_MAX_ATTEMPTS", 8, 1, 100),
        backoff_base=_float(env, "OTS_NOTIFY_BACKOFF_BASE", 30.0),
        poll_interval=_float(env, "OTS_NOTIFY_POLL_INTERVAL", 2.0),
        lease_seconds=_float(env, "OTS_NOTIFY_LEASE", 60.0),
        webhook_timeout=_float(env, "OTS_WEBHOOK_TIMEOUT", 10.0),
        webhook_deny=DEFAULT_WEBHOOK_DENY
        if not deny
        else ()
        if deny == "none"
        else _networks(deny, "OTS_WEBHOOK_DENY_NETWORKS"),
    )


def _rate_limits(env: Mapping[str, str]) -> RateLimits:
    """OTS_RATE_LIMITS="create_secret=100,show_secret=500" overrides single events."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for entry in env.get("OTS_RATE_LIMITS", "").replace(",", " ").split():
        event, _, count = entry.partition("=")
        if event not in limits or not count.isdigit() or int(count) < 1:
            raise ConfigError(f"OTS_RATE_LIMITS: bad entry {entry!r} (events: {', '.join(limits)})")
        limits[event] = int(count)
    window = _int(env, "OTS_RATE_WINDOW", 1200, 1, DAY)
    return RateLimits(window_seconds=window, per_event=tuple(limits.items()))


def _networks(text: str, name: str = "OTS_TRUSTED_PROXIES") -> tuple[IPNetwork, ...]:
    try:
        return tuple(ip_network(part, strict=False) for part in text.replace(",", " ").split())
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _domains(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


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


def secret_setting(env: Mapping[str, str], name: str) -> str:
    """NAME, or the content of the file NAME_FILE names (a mounted Kubernetes Secret)."""
    path = env.get(f"{name}_FILE")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {name}_FILE: {exc.strerror}") from None
    else:
        value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set (nor {name}_FILE)")
    return value


def optional_secret(env: Mapping[str, str], name: str) -> str:
    """Like secret_setting, but unset is allowed (an SMTP relay without auth)."""
    if env.get(name) or env.get(f"{name}_FILE"):
        return secret_setting(env, name)
    return ""


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
