"""RESULTS.md, written from whatever bench/results/*.json the subcommands left."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench import results, sections
from bench.plan import POOL
from bench.tables import by_key, paired_ratio, ratio_text, summary_row, table

OUT = Path(__file__).resolve().parent / "RESULTS.md"
WORKLOADS = ("conceal", "reveal", "lifecycle", "mixed")
SYSTEMS = (
    ("ours", "ours"),
    ("snappass", "SnapPass"),
    ("sql", "SQL (pgbench)"),
    ("sql-batched", "SQL in batches"),
    ("http", "HTTP ceiling"),
)


PREFACE = """# Benchmark results (issue 9)

Written by `make bench` (`python -m bench all`), or one subcommand at a time; each section
names the command that measured it, when, and under what conditions. Setup and how to
reproduce: bench/README.md. What stands between the service and the targets, with the
evidence: bench/FINDINGS.md."""


def write() -> Path:
    found = {name: results.load(name) for name in sections.ORDER}
    parts = [PREFACE]
    compare = found.pop("compare")
    if compare:
        parts += [sections.header("Side by side", compare), side_by_side(compare), ratios(compare)]
        parts.append(batch_sizes(compare))
    parts += [sections.render(name, data) for name, data in found.items() if data]
    parts.append(sections.targets({**found, "compare": compare}))
    OUT.write_text("\n\n".join(part.strip() for part in parts if part) + "\n")
    return OUT


def side_by_side(data: dict[str, Any]) -> str:
    groups = by_key(data["runs"])
    header = ["system", "c", "req/s", "p50 ms", "p99 ms", "CPU ms/req (app + store)", "errors"]
    header.append("runs cut short")
    out = []
    for workload in WORKLOADS:
        rows = [
            [
                label,
                c,
                *summary_row(groups[(system, workload, c)]),
                _cut(groups[(system, workload, c)]),
            ]
            for c in sorted({key[2] for key in groups})
            for system, label in SYSTEMS
            if (system, workload, c) in groups
        ]
        unit = " (lifecycles/s in the req/s column)" if workload == "lifecycle" else ""
        out.append(f"### {workload}{unit}\n\n" + table(header, rows))
    return "\n\n".join(out)


def _cut(runs: list[Any]) -> str:
    """Runs whose links ran out before the end: their rate is a lower bound."""
    cut = sum(1 for run in runs if run.note)
    return f"{cut} of {len(runs)}" if cut else ""


def ratios(data: dict[str, Any]) -> str:
    groups = by_key(data["runs"])
    rows = []
    for workload in WORKLOADS:
        for c in sorted({key[2] for key in groups if key[0] == "ours" and key[1] == workload}):
            mine = ("ours", workload, c)
            rows.append(
                [
                    workload,
                    c,
                    ratio_text(paired_ratio(groups, mine, ("snappass", workload, c))),
                    ratio_text(paired_ratio(groups, mine, ("sql", workload, c))),
                    ratio_text(paired_ratio(groups, mine, ("sql", workload, POOL))),
                    ratio_text(paired_ratio(groups, mine, ("sql-batched", workload, POOL))),
                    ratio_text(paired_ratio(groups, mine, ("http", workload, c))),
                ]
            )
    header = [
        "workload",
        "c",
        "ours / SnapPass",
        "ours / SQL",
        f"ours / SQL at {POOL}",
        f"ours / SQL in batches at {POOL}",
        "ours / HTTP",
    ]
    note = (
        "Each ratio is the median over repetitions of the ratio within one repetition. "
        '"SQL" is pgbench at the same number of connections as the HTTP load (as issue 9 '
        f'asks); "SQL at {POOL}" is pgbench at the pool size the service uses, whatever '
        "the HTTP concurrency: the fairer ceiling, since 256 backends on 2 cores mostly "
        'wait on each other. "SQL in batches" is pgbench sending the statements the '
        "service sends under load (group commit), a fixed number of conceals or reveals per "
        "statement (below, with the batch sizes the service really formed). The HTTP "
        "ceiling answers a conceal-shaped request, so it has a conceal ratio only."
    )
    return "### Ratios\n\n" + table(header, rows) + "\n\n" + note


def batch_sizes(data: dict[str, Any]) -> str:
    """The service's mean batch size by kind, per workload and concurrency (over the
    repetitions): what group commit made of the load."""
    extra = data.get("extra") or {}
    seen: dict[tuple[str, int], dict[str, list[float]]] = {}
    for key, means in (extra.get("batches") or {}).items():
        workload, c, _ = key.split()
        kinds = seen.setdefault((workload, int(c)), {})
        for kind, mean in means.items():
            kinds.setdefault(kind, []).append(mean)
    if not seen:
        return ""
    rows = [
        [
            workload,
            c,
            ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in sorted(kinds.items())),
        ]
        for (workload, c), kinds in sorted(seen.items())
    ]
    note = (
        "Mean changes per statement, by kind (the median over repetitions), read from the "
        "service's `ots_batch_size` histogram around each run. The batched SQL ceiling "
        f"sends {extra.get('sql_batch', '?')} per statement."
    )
    return (
        "### Batch sizes (group commit)\n\n"
        + table(["workload", "c", "mean batch"], rows)
        + "\n\n"
        + note
    )
