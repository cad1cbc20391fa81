"""Command line: serve | dev | migrate | keys generate."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aiohttp import web

from app import crypto, migrate
from app.config import ConfigError, Settings
from app.logs import RouteAccessLogger, configure
from app.server import create_app

DEV_DIR = Path(".data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API (configuration from the environment)")
    commands.add_parser(
        "dev", help="local development: dev key, embedded PostgreSQL, migrate, serve"
    )
    commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    keys = commands.add_parser("keys", help="key ring tools")
    keys.add_argument("action", choices=["generate"], help="print a fresh key ring")
    args = parser.parse_args(argv)
    try:
        configure(os.environ.get("OTS_LOG_LEVEL", "INFO"))
        return COMMANDS[args.command](dict(os.environ))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def serve(env: dict[str, str]) -> int:
    settings = Settings.from_env(env)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log_class=RouteAccessLogger,
        shutdown_timeout=10,
    )
    return 0


def dev(env: dict[str, str]) -> int:
    """What `make run` does: keeps a local key and database in .data/ across restarts."""
    if not (env.get("OTS_KEYS") or env.get("OTS_KEYS_FILE")):
        env["OTS_KEYS_FILE"] = str(_dev_keys(DEV_DIR / "dev-keys"))
    if not env.get("DATABASE_URL"):
        from app import embedded  # noqa: PLC0415  # the wheel is only needed here

        server = embedded.start((DEV_DIR / "pg").resolve())
        env["DATABASE_URL"] = embedded.database_url(server, "ots")
    migrate.upgrade(env["DATABASE_URL"])
    return serve(env)


def _dev_keys(path: Path) -> Path:
    """A development key ring, made once and kept (owner-only) so secrets survive restarts."""
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(crypto.generate_keyring_text())
    return path


def run_migrations(env: dict[str, str]) -> int:
    url = env.get("DATABASE_URL")
    if not url:
        raise ConfigError("DATABASE_URL is not set")
    migrate.upgrade(url)
    return 0


def keys_generate(env: dict[str, str]) -> int:
    print(crypto.generate_keyring_text(), end="")
    return 0


COMMANDS = {"serve": serve, "dev": dev, "migrate": run_migrations, "keys": keys_generate}

if __name__ == "__main__":
    sys.exit(main())
