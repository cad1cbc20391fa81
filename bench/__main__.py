"""`python -m bench [--quick] SUBCOMMAND`: each subcommand measures, saves its JSON in
bench/results/ and rewrites bench/RESULTS.md from every JSON there; `all` runs them all."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench import compare, passphrase, profile, report, rss, size, sweeper
from bench.plan import FULL, QUICK, Context, Plan
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
    command = " ".join(["python -m bench", *_shown(args), args.command])
    failed = [name for name in names if not _measure(name, args, command)]
    print(f"bench: wrote {report.write()}", flush=True)
    if failed:
        print(f"bench: failed: {', '.join(failed)} (see above)", file=sys.stderr)
    return 1 if failed else 0


def _measure(name: str, args: argparse.Namespace, command: str) -> bool:
    """One subcommand, its results saved; a failure is reported and the others still run."""
    logs = RESULTS / "logs" / name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    print(f"bench: {name} ...", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="ots-bench-") as tmp:
            ctx = Context(_plan(args), Path(tmp), logs, args.database_url, command)
            measured = SUBCOMMANDS[name](ctx)
    except Exception:  # a long run should still measure (and report) the rest
        traceback.print_exc()
        return False
    measured.note = args.note
    print(f"bench: {name} -> {measured.save()}", flush=True)
    return True


def _shown(args: argparse.Namespace) -> list[str]:
    """The options that shape the run, as typed; not the URL (it may hold a password) nor
    the note (RESULTS.md shows it apart)."""
    shown = ["--quick"] if args.quick else []
    for name in ("seconds", "concurrency", "reps"):
        if getattr(args, name):
            shown.append(f"--{name} {getattr(args, name)}")
    return shown


def _plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    if args.seconds:
        plan = replace(plan, seconds=args.seconds)
    if args.concurrency:
        plan = replace(plan, concurrencies=tuple(int(c) for c in args.concurrency.split(",")))
    if args.reps:
        plan = replace(plan, reps=args.reps)
    return plan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("command", choices=["all", *SUBCOMMANDS, "report"])
    parser.add_argument("--quick", action="store_true", help="a smoke run: short, one concurrency")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a PostgreSQL server to use (a fresh database on it); default: embedded",
    )
    parser.add_argument("--seconds", type=int, help="length of one load run (plan's default)")
    parser.add_argument("--concurrency", help="connections, comma-separated (e.g. 16,64,256)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions")
    parser.add_argument("--note", default="", help="the conditions, kept with the results")
    return parser


if __name__ == "__main__":
    sys.exit(main())
