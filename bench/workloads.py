"""The workloads, per system: which Lua script, which path, which body."""

from __future__ import annotations

from pathlib import Path

from bench.load import Workload
from bench.seed import SNAPPASS_FORM, conceal_body, reveal_body

CONCEAL = "/api/v2/secret/conceal"
FORM = "application/x-www-form-urlencoded"
# The read-heavy mix: 10 % creates; of the reads, 7 metadata GETs to 2 receipt GETs.
WRITE_PCT = "10"
SHOWS_PER_PAIR, RECEIPTS_PER_PAIR = 7, 2


def conceal(passphrase: bool = False) -> Workload:
    name = "conceal+passphrase" if passphrase else "conceal"
    return Workload(name, "fixed", CONCEAL, {"BENCH_BODY": conceal_body(passphrase)})


def reveal(keys: Path, passphrase: bool = False) -> Workload:
    """Each line of `keys` is a reveal path, used once."""
    name = "reveal+passphrase" if passphrase else "reveal"
    return Workload(
        name, "once", env={"BENCH_BODY": reveal_body(passphrase), "BENCH_KEYS": str(keys)}
    )


def reveal_paths(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"/api/v2/secret/{share}/reveal" for share, _ in pairs]


def lifecycle(pause_ms: int | None = None) -> Workload:
    """`pause_ms`: each connection pauses before each request (a load below saturation)."""
    if pause_ms is None:
        return Workload("lifecycle", "lifecycle", env={"BENCH_BODY": conceal_body()})
    env = {"BENCH_BODY": conceal_body(), "BENCH_PAUSE_MS": str(pause_ms)}
    return Workload("lifecycle paced", "lifecycle", env=env)


def mixed(reads: Path) -> Workload:
    env = {"BENCH_KEYS": str(reads), "BENCH_WRITE_PCT": WRITE_PCT, "BENCH_PATH": CONCEAL}
    return Workload("mixed", "mixed", env={**env, "BENCH_BODY": conceal_body()})


def mixed_reads(pairs: list[tuple[str, str]]) -> list[str]:
    """Metadata and receipt GETs in the mix's proportions; none of them consumes."""
    lines = []
    for share, receipt in pairs:
        lines += [f"/api/v2/secret/{share}"] * SHOWS_PER_PAIR
        lines += [f"/api/v2/private/{receipt}"] * RECEIPTS_PER_PAIR
    return lines


def ceiling() -> Workload:
    return Workload("conceal", "fixed", CONCEAL, {"BENCH_BODY": conceal_body()})


def snappass_create() -> Workload:
    return Workload("conceal", "fixed", "/", {"BENCH_BODY": SNAPPASS_FORM, "BENCH_CTYPE": FORM})


def snappass_retrieve(keys: Path) -> Workload:
    """Each line of `keys` is a link path; POST to it consumes the secret."""
    return Workload("reveal", "once", env={"BENCH_KEYS": str(keys), "BENCH_CTYPE": FORM})


def snappass_lifecycle() -> Workload:
    return Workload("lifecycle", "snappass_lifecycle", env={"BENCH_BODY": SNAPPASS_FORM})


def snappass_mixed(reads: Path) -> Workload:
    """Creates, and GETs of the link (SnapPass's preview: it checks, never consumes)."""
    env = {"BENCH_KEYS": str(reads), "BENCH_WRITE_PCT": WRITE_PCT, "BENCH_PATH": "/"}
    return Workload("mixed", "mixed", env={**env, "BENCH_BODY": SNAPPASS_FORM, "BENCH_CTYPE": FORM})
