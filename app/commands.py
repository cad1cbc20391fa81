"""What each command does; `python -m app` only parses arguments and reports errors."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from app import audit_commands, crypto, migrate
from app.config import IPNetwork, Settings, secret_setting
from app.core import accounts, webhooks
from app.core.context import Services
from app.store.db import Store, close_pool, create_pool
from app.workers import run_server, serve_workers

DEV_DIR = Path(".data")


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.command == "serve":
        return serve(env, args.workers)
    if args.command == "dev":
        env = local_env(env)
        migrate.upgrade(env["DATABASE_URL"])  # make run applies migrations to any database
        return serve(env)
    if args.command == "migrate":
        migrate.upgrade(_database_url(env))
        return 0
    if args.command == "keys" and args.action == "generate":
        print(crypto.generate_keyring_text(), end="")
        return 0
    return asyncio.run(with_services(args, local_env(env)))


def serve(env: dict[str, str], workers: int = 1) -> int:
    """Serve until SIGTERM or SIGINT, then drain: stop accepting, let requests in flight
    finish (up to OTS_SHUTDOWN_TIMEOUT), stop the sweeper, close the pool, exit 0."""
    settings = Settings.from_env(env)
    if workers > 1:
        return serve_workers(settings, workers)
    run_server(settings)
    return 0


def local_env(env: dict[str, str]) -> dict[str, str]:
    """What `make run` uses when DATABASE_URL is unset: the embedded PostgreSQL and a
    development key ring, both kept in .data/ so secrets survive restarts. A given
    DATABASE_URL is left alone: migrating a real database is a deliberate step."""
    if env.get("DATABASE_URL") or env.get("DATABASE_URL_FILE"):
        return env
    from app import embedded  # noqa: PLC0415  # the wheel is only needed here

    local = dict(env)
    if not (env.get("OTS_KEYS") or env.get("OTS_KEYS_FILE")):
        local["OTS_KEYS_FILE"] = str(_dev_keys(DEV_DIR / "dev-keys"))
    server = embedded.start((DEV_DIR / "pg").resolve())
    local["DATABASE_URL"] = embedded.database_url(server, "ots")
    migrate.upgrade(local["DATABASE_URL"])
    return local


def _dev_keys(path: Path) -> Path:
    """A development key ring, made once and kept (owner-only)."""
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(crypto.generate_keyring_text())
    return path


def _database_url(env: dict[str, str]) -> str:
    return secret_setting(env, "DATABASE_URL")


async def with_services(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Commands that work on the database: customers, audit, keys retire."""
    settings = Settings.from_env(env)
    pool = await create_pool(settings.database)
    try:
        svc = Services.build(settings, Store(pool, settings.database.acquire_timeout))
        if args.command == "audit":
            return await audit_commands.run(svc, args)
        if args.command == "keys":
            return await audit_commands.retire_key(svc, args.key_id)
        if args.action in NOTIFY_ACTIONS:
            await _notify_action(svc, args, settings.notify.webhook_deny)
        else:
            await _customer_action(svc, args)
    finally:
        await close_pool(pool)
    return 0


async def _customer_action(svc: Services, args: argparse.Namespace) -> None:
    if args.action == "add":
        token = await accounts.add_customer(svc, args.email, args.plan, admin=args.admin)
        role = ", admin" if args.admin else ""
        print(f"created {args.email.strip().lower()} (plan {args.plan}{role})")
        print(f"token: {token}")
    elif args.action == "rotate-token":
        token = await accounts.rotate_token(svc, args.email)
        print(f"token: {token}")
    elif args.action == "disable":
        await accounts.disable_customer(svc, args.email)
        print(f"disabled {args.email.strip().lower()}")
    else:
        for customer in await accounts.list_customers(svc):
            state = "disabled" if customer.disabled else "active"
            print(f"{customer.custid}\t{customer.plan}\t{state}\t{customer.created:%Y-%m-%d}")


NOTIFY_ACTIONS = ("webhook", "webhook-remove", "notify-sender")


async def _notify_action(
    svc: Services, args: argparse.Namespace, deny: tuple[IPNetwork, ...]
) -> None:
    """The signing secret is printed once, and only if generated here."""
    email = args.email.strip().lower()
    if args.action == "webhook":
        given = sys.stdin.readline().strip() if args.secret_stdin else None
        secret = await webhooks.set_webhook(svc, email, args.url, deny, given)
        print(f"webhook for {email} set")
        if not given:
            print(f"signing secret: {secret}")
    elif args.action == "webhook-remove":
        await webhooks.remove_webhook(svc, email)
        print(f"webhook for {email} removed")
    else:
        await webhooks.set_notify_sender(svc, email, args.switch == "on")
        print(f"sender notifications for {email} {args.switch}")
