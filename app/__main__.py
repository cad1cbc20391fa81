"""Command line: serve | dev | migrate | keys generate | customers ..."""

from __future__ import annotations

import argparse
import os
import sys

from app import commands
from app.config import ConfigError
from app.core.errors import DomainError
from app.logs import configure


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configure(os.environ.get("OTS_LOG_LEVEL", "INFO"), os.environ.get("OTS_LOG_FORMAT", "text"))
        return commands.run(args, dict(os.environ))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API (configuration from the environment)")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    sub.add_parser("dev", help="local development: dev key, embedded PostgreSQL, migrate, serve")
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    keys = sub.add_parser("keys", help="key ring tools")
    key_actions = keys.add_subparsers(dest="action", required=True)
    key_actions.add_parser("generate", help="print a fresh key ring")
    retire = key_actions.add_parser("retire", help="record that a master key leaves the ring")
    retire.add_argument("key_id", type=int)
    trail = sub.add_parser("audit", help="the audit trail: verify, export, prune")
    trail_actions = trail.add_subparsers(dest="action", required=True)
    trail_actions.add_parser("verify", help="check every hash chain; exit 1 at the first break")
    export = trail_actions.add_parser("export", help="stream events as JSON lines or CSV")
    export.add_argument("--since", help="ISO 8601 or epoch seconds (default: the beginning)")
    export.add_argument("--until", help="ISO 8601 or epoch seconds (default: now)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    prune = trail_actions.add_parser("prune", help="delete events older than a date (audited)")
    prune.add_argument("--before", required=True, help="ISO 8601 date or time")
    customers = sub.add_parser(
        "customers", help="accounts and API tokens (embedded database when DATABASE_URL is unset)"
    )
    actions = customers.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create an account; prints its API token once")
    add.add_argument("email")
    add.add_argument("--plan", choices=["basic", "identity"], default="basic")
    add.add_argument("--admin", action="store_true", help="may read the audit trail over the API")
    actions.add_parser("list", help="list accounts")
    for name, text in (("disable", "disable an account"), ("rotate-token", "issue a new token")):
        actions.add_parser(name, help=text).add_argument("email")
    _notify_parsers(actions)
    return parser


def _notify_parsers(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hook = actions.add_parser(
        "webhook", help="POST the account's events to URL; prints a new signing secret once"
    )
    hook.add_argument("email")
    hook.add_argument("url")
    hook.add_argument(
        "--secret-stdin", action="store_true", help="read the signing secret from stdin instead"
    )
    actions.add_parser("webhook-remove", help="stop the account's webhook").add_argument("email")
    notify = actions.add_parser("notify-sender", help="mail the account when secrets are read")
    notify.add_argument("email")
    notify.add_argument("switch", choices=["on", "off"])


if __name__ == "__main__":
    sys.exit(main())
