"""The SQL ceiling: pgbench running the statements of a conceal and of a reveal (made
from the service's own by bench/sqlgen.py) against the same PostgreSQL, at the same
concurrency as the HTTP loads."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import statistics
import tempfile
from pathlib import Path

from bench import fill, procs, sqlgen
from bench.pg import Database
from bench.results import Run

SCRIPTS = {"conceal": sqlgen.conceal, "reveal": sqlgen.reveal}
BATCHED = {"conceal": sqlgen.conceal_batched, "reveal": sqlgen.reveal_batched}
THREADS = 2
# Above 64 clients, two share an audit chain; one whose head moved is retried, as the
# service retries (app/core/chains.py).
MAX_TRIES = "10"
# One client address for every request, as wrk's: the service counts them all on one row.
CLIENT_REF = "\\x" + hashlib.sha256(b"bench client").hexdigest()
VARIABLES = {
    "client_ref": CLIENT_REF,
    "window": "1200",
    "ttl": "3600",
    "share_sealed": "\\x" + "ab" * 90,
    "ciphertext": "\\x" + "cd" * 104,
    "n": "0",
}
_bases = itertools.count(1)
BATCHED_SYSTEM = "sql-batched"


def conceal(db: Database, concurrency: int, seconds: float, rep: int, batch: int = 1) -> Run:
    """`batch` > 1: that many conceals per transaction, as group commit sends them."""
    return _run(db, "conceal", concurrency, ["-T", str(round(seconds))], rep, batch)


def reveal(db: Database, concurrency: int, requests: int, rep: int, batch: int = 1) -> Run:
    """Each client consumes its share of `requests` secrets of its own, made just before,
    `batch` per transaction."""
    each = max(requests // concurrency // batch, 5)
    base = next(_bases) * 10**10  # a fresh block of ids per run
    fill.per_client(db.url, base, concurrency, each * batch)
    return _run(db, "reveal", concurrency, ["-t", str(each), "-D", f"base={base}"], rep, batch)


def _run(
    db: Database, workload: str, concurrency: int, length: list[str], rep: int, batch: int
) -> Run:
    threads = min(THREADS, concurrency)
    with tempfile.TemporaryDirectory(prefix="pgbench-") as logs:
        script = Path(logs) / f"{workload}.sql"
        script.write_text(SCRIPTS[workload]() if batch == 1 else BATCHED[workload](batch))
        cmd = [db.pgbench, "-n", "-M", "prepared", "-c", str(concurrency), "-j", str(threads)]
        cmd += [*length, "-f", str(script), "--max-tries", MAX_TRIES]
        cmd += ["--log", f"--log-prefix={logs}/tx"]
        cmd += [arg for k, v in VARIABLES.items() for arg in ("-D", f"{k}={v}")]
        roots = (db.postmaster,) if db.postmaster else ()
        with procs.CpuMeter(roots) as cpu:
            out = procs.run([*cmd, db.url], timeout=900)
        latencies = _latencies(Path(logs))
    run = _to_run(workload, concurrency, rep, out, latencies, cpu.used)
    if batch == 1:
        return run
    # A transaction is `batch` requests; its latency stays the transaction's.
    return dataclasses.replace(
        run,
        system=BATCHED_SYSTEM,
        requests=run.requests * batch,
        errors=run.errors * batch,
        db_cpu=run.db_cpu / batch,
    )


def _latencies(logs: Path) -> list[float]:
    """Per-transaction latencies (ms) from pgbench --log: the third field is in µs, or
    "failed" for a transaction that ran out of tries (counted apart, as errors)."""
    values = []
    for path in logs.glob("tx*"):
        fields = (line.split()[2] for line in path.read_text().splitlines())
        values += [int(field) / 1000 for field in fields if field.isdigit()]
    return sorted(values)


def _to_run(
    workload: str, concurrency: int, rep: int, out: str, latencies: list[float], cpu: float
) -> Run:
    done = int(_field(out, r"number of transactions actually processed: (\d+)"))
    failed = int(_field(out, r"number of failed transactions: (\d+)", "0"))
    tps = float(_field(out, r"tps = ([\d.]+)"))
    return Run(
        system="sql",
        workload=workload,
        concurrency=concurrency,
        rep=rep,
        requests=done,
        seconds=done / tps if tps else 0.0,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0,
        errors=failed,
        app_cpu=0.0,
        db_cpu=cpu / max(done, 1),
        rss_mb=0.0,
    )


def _field(text: str, pattern: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match:
        return match.group(1)
    if default is None:
        raise RuntimeError(f"pgbench output lacks {pattern!r}:\n{text[-2000:]}")
    return default
