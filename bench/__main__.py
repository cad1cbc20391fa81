"""`python -m bench [--quick] SUBCOMMAND`: each subcommand measures, saves its JSON in
bench/results/ and rewrites bench/RESULTS.md from every JSON there; `all` runs them all."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import compare, passphrase, profile, report, rss, size, sweeper
from bench.plan import FULL, QUICK, Context
from bench.results import RESULTS, Report

SUBCOMMANDS: dict[str, Callable[[Context], Report]] = {
    "compare": compare.compare,
    "passphrase": passphrase.passphrase,
    "lag": passphrase.lag,
    "size": size.size,
    "sweeper": sweeper.sweeper,
    "rss": rss.rss,
    "profile": profile.profile,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = list(SUBCOMMANDS) if args.command == "all" else [args.command]
    names = [] if args.command == "report" else names
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    for name in names:
        with tempfile.TemporaryDirectory(prefix="ots-bench-") as tmp:
            logs = RESULTS / "logs" / name
            logs.mkdir(parents=True, exist_ok=True)
            ctx = Context(
                QUICK if args.quick else FULL, Path(tmp), logs, args.database_url, command
            )
            print(f"bench: {name} ...", flush=True)
            print(f"bench: {name} -> {SUBCOMMANDS[name](ctx).save()}", flush=True)
        print(f"bench: wrote {report.write(_preface(args.note))}", flush=True)
    if not names:
        print(f"bench: wrote {report.write(_preface(args.note))}")
    return 0


def _preface(note: str) -> str:
    conditions = f"\n\n**Conditions:** {note}" if note else ""
    return (
        "# Benchmark results (issue 9)\n\n"
        "Written by `make bench` (`python -m bench all`); each section names the command "
        "that measured it. How to read and reproduce: see bench/README.md." + conditions
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("command", choices=["all", *SUBCOMMANDS, "report"])
    parser.add_argument("--quick", action="store_true", help="a smoke run: short, one concurrency")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a PostgreSQL server to use (a fresh database on it); default: embedded",
    )
    parser.add_argument("--note", default="", help="the conditions, for RESULTS.md")
    return parser


if __name__ == "__main__":
    sys.exit(main())
