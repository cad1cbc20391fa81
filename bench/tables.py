"""Medians and ratios over the runs of a report, and Markdown tables of them."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence

from bench.results import Run

Key = tuple[str, str, int]  # system, workload, concurrency
# Requests per lifecycle: ours conceal, reveal, receipt; SnapPass create, retrieve.
STEPS = {"ours": 3, "snappass": 2}
DECIMALS_BELOW = 10  # small numbers keep two decimals


def by_key(runs: Iterable[Run]) -> dict[Key, list[Run]]:
    groups: dict[Key, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.system, run.workload, run.concurrency), []).append(run)
    return groups


def median(runs: Sequence[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(run) for run in runs) if runs else float("nan")


def rate(run: Run) -> float:
    """Requests per second; for a lifecycle, lifecycles per second."""
    lifecycle = run.workload.startswith("lifecycle")  # paced too
    return run.rps / STEPS.get(run.system, 1) if lifecycle else run.rps


def paired_ratio(groups: dict[Key, list[Run]], mine: Key, other: Key) -> float | None:
    """Median over repetitions of mine/other, each pair measured in the same repetition."""
    theirs = {run.rep: rate(run) for run in groups.get(other, [])}
    ratios = [rate(run) / theirs[run.rep] for run in groups.get(mine, []) if theirs.get(run.rep)]
    return statistics.median(ratios) if ratios else None


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < DECIMALS_BELOW else f"{value:,.0f}"
    return str(value)


def ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_row(runs: Sequence[Run]) -> list[object]:
    """req/s, p50, p99 (ms), CPU ms per request (app + data store), errors: medians."""
    if not runs:
        return [None] * 5
    cpu = median(runs, lambda r: 1000 * r.app_cpu), median(runs, lambda r: 1000 * r.db_cpu)
    return [
        median(runs, rate),
        median(runs, lambda r: r.p50_ms),
        median(runs, lambda r: r.p99_ms),
        f"{cpu[0]:.2f} + {cpu[1]:.2f}",
        sum(run.errors for run in runs),
    ]
