"""Settings from the environment: fail fast on anything missing or malformed."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from app.config import ConfigError, Settings
from tests.factories import TEST_KEYS

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "OTS_KEYS": TEST_KEYS}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.host, settings.port) == ("127.0.0.1", 7143)
    assert settings.base_url == "http://127.0.0.1:7143"
    assert settings.limits.ttl_default == 604800
    assert settings.keys.active_id == 1


def test_overrides() -> None:
    env = {
        **BASE,
        "OTS_HOST": "192.0.2.1",
        "OTS_PORT": "8080",
        "OTS_BASE_URL": "https://secrets.example.com/",
        "OTS_PASSPHRASE_MIN_LENGTH": "12",
    }
    settings = Settings.from_env(env)
    assert (settings.host, settings.port) == ("192.0.2.1", 8080)
    assert settings.base_url == "https://secrets.example.com"
    assert settings.limits.passphrase_min == 12


def test_keys_from_a_mounted_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(TEST_KEYS + "\n")
    env = {"DATABASE_URL": BASE["DATABASE_URL"], "OTS_KEYS_FILE": str(path)}
    assert Settings.from_env(env).keys.active_id == 1


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"OTS_KEYS": TEST_KEYS}, "DATABASE_URL is not set"),
        ({"DATABASE_URL": "postgresql://x"}, "no key ring"),
        ({**BASE, "OTS_KEYS": "idx:abc"}, "bad key ring"),
        ({"DATABASE_URL": "postgresql://x", "OTS_KEYS_FILE": "/nonexistent/keys"}, "cannot read"),
        ({**BASE, "OTS_PORT": "http"}, "OTS_PORT must be an integer"),
        ({**BASE, "OTS_DB_ACQUIRE_TIMEOUT": "soon"}, "must be a number"),
    ],
)
def test_refuses_bad_configuration(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("TRUE", True), ("1", True), ("no", False), ("", False)]
)
def test_switches_read_common_spellings(raw: str, expected: bool) -> None:
    settings = Settings.from_env({**BASE, "OTS_PASSPHRASE_REQUIRED": raw})
    assert settings.limits.passphrase_required is expected


@pytest.mark.parametrize(
    ("name", "raw", "complaint"),
    [
        ("OTS_PASSPHRASE_REQUIRED", "ture", "must be true or false"),
        ("OTS_PORT", "0", "between 1 and 65535"),
        ("OTS_DB_POOL_MAX", "0", "between 1 and 1000"),
        ("OTS_PLAN_ANONYMOUS_MAX_BYTES", "-1", "between"),
        ("OTS_PLAN_BASIC_TTL_MAX", "59", "between"),
        ("OTS_RATE_LIMITS", "show_secret=0", "bad entry"),
        ("OTS_RATE_LIMITS", "nonsense=5", "bad entry"),
        ("OTS_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip", "OTS_TRUSTED_PROXIES"),
        ("OTS_EXPIRY_INTERVAL", "0", "positive"),
        ("OTS_EXPIRY_RATE", "-1", "between 0 and"),
        ("OTS_DB_ACQUIRE_TIMEOUT", "inf", "positive"),
    ],
)
def test_out_of_range_values_are_refused(name: str, raw: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        Settings.from_env({**BASE, name: raw})


def test_body_limit_follows_the_largest_plan() -> None:
    default = Settings.from_env(BASE)
    large = Settings.from_env({**BASE, "OTS_PLAN_IDENTITY_MAX_BYTES": "2000000"})
    assert default.max_body_bytes == 6 * 1_000_000 + 64 * 1024
    assert large.max_body_bytes == 6 * 2_000_000 + 64 * 1024


def test_plans_rate_limits_proxies_and_domains() -> None:
    env = {
        **BASE,
        "OTS_PLAN_BASIC_MAX_BYTES": "50000",
        "OTS_PLAN_IDENTITY_TTL_MAX": "86400",
        "OTS_RATE_LIMITS": "show_secret=7, burn_secret=3",
        "OTS_RATE_WINDOW": "60",
        "OTS_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
        "OTS_SHARE_DOMAINS": "Share.Example.com, other.example.org",
    }
    settings = Settings.from_env(env)
    assert settings.plan("basic").max_secret_bytes == 50000
    assert settings.plan("identity").ttl_max == 86400
    assert settings.plan("anonymous").ttl_max == 7 * 86400
    assert settings.rate_limits.limit("show_secret") == 7
    assert settings.rate_limits.limit("create_secret") == 1000
    assert settings.rate_limits.window_seconds == 60
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32"]
    assert settings.share_domains == ("share.example.com", "other.example.org")


def test_database_url_from_a_mounted_file(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text("postgresql://u@db.internal/ots\n")
    settings = Settings.from_env({"DATABASE_URL_FILE": str(path), "OTS_KEYS": TEST_KEYS})
    assert settings.database.url == "postgresql://u@db.internal/ots"
    with pytest.raises(ConfigError, match="cannot read DATABASE_URL_FILE"):
        Settings.from_env({"DATABASE_URL_FILE": str(tmp_path / "nope"), "OTS_KEYS": TEST_KEYS})


def test_operations_settings() -> None:
    env = {
        **BASE,
        "OTS_SHUTDOWN_TIMEOUT": "25",
        "OTS_READY_TIMEOUT": "0.5",
        "OTS_LOG_FORMAT": "json",
        "OTS_EXPIRY_RATE": "0",
    }
    settings = Settings.from_env(env)
    assert (settings.shutdown_timeout, settings.ready_timeout) == (25.0, 0.5)
    assert settings.log_format == "json"
    assert settings.expiry_rate == 0
    assert Settings.from_env(BASE).expiry_rate == 25_000


def test_hash_workers_are_bounded() -> None:
    assert 1 <= Settings.from_env(BASE).passphrase_workers <= 4
    assert Settings.from_env({**BASE, "OTS_PASSPHRASE_WORKERS": "8"}).passphrase_workers == 8


def test_notification_settings() -> None:
    default = Settings.from_env(BASE).notify
    assert default.smtp.host == ""  # no relay: no mail
    assert (default.max_attempts, default.backoff_base, default.poll_interval) == (8, 30.0, 2.0)
    assert ip_network("169.254.0.0/16") in default.webhook_deny
    env = {
        **BASE,
        "OTS_SMTP_HOST": "smtp.example.com",
        "OTS_SMTP_PORT": "2525",
        "OTS_SMTP_USERNAME": "ots",
        "OTS_SMTP_PASSWORD": "relay-password-123",
        "OTS_SMTP_STARTTLS": "false",
        "OTS_SMTP_FROM": "Secrets <ots@example.com>",
        "OTS_NOTIFY_MAX_ATTEMPTS": "3",
        "OTS_NOTIFY_BACKOFF_BASE": "0.5",
        "OTS_NOTIFY_POLL_INTERVAL": "0.25",
        "OTS_WEBHOOK_TIMEOUT": "4",
        "OTS_WEBHOOK_DENY_NETWORKS": "10.0.0.0/8, fd00::/8",
    }
    notify = Settings.from_env(env).notify
    assert (notify.smtp.host, notify.smtp.port, notify.smtp.starttls) == (
        "smtp.example.com",
        2525,
        False,
    )
    assert notify.smtp.password == "relay-password-123"
    assert "relay-password-123" not in repr(Settings.from_env(env))
    assert (notify.max_attempts, notify.backoff_base, notify.poll_interval) == (3, 0.5, 0.25)
    assert notify.webhook_timeout == 4.0
    assert [str(n) for n in notify.webhook_deny] == ["10.0.0.0/8", "fd00::/8"]
    none = Settings.from_env({**BASE, "OTS_WEBHOOK_DENY_NETWORKS": "none"}).notify
    assert none.webhook_deny == ()


def test_smtp_password_from_a_mounted_file(tmp_path: Path) -> None:
    path = tmp_path / "smtp"
    path.write_text("from-a-file\n")
    settings = Settings.from_env({**BASE, "OTS_SMTP_PASSWORD_FILE": str(path)})
    assert settings.notify.smtp.password == "from-a-file"


@pytest.mark.parametrize(
    ("name", "raw", "complaint"),
    [
        ("OTS_NOTIFY_MAX_ATTEMPTS", "0", "between 1 and 100"),
        ("OTS_NOTIFY_BACKOFF_BASE", "-1", "positive"),
        ("OTS_SMTP_STARTTLS", "maybe", "must be true or false"),
        ("OTS_WEBHOOK_DENY_NETWORKS", "10.0.0.0/8, private", "OTS_WEBHOOK_DENY_NETWORKS"),
        ("OTS_NOTIFY_LEASE", "15", "above the slowest delivery"),
    ],
)
def test_bad_notification_settings_are_refused(name: str, raw: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        Settings.from_env({**BASE, name: raw})
