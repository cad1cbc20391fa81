"""RESULTS.md, written from whatever bench/results/*.json the subcommands left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import results, sections
from bench.tables import by_key, paired_ratio, ratio_text, summary_row, table

OUT = Path(__file__).resolve().parent / "RESULTS.md"
WORKLOADS = ("conceal", "reveal", "lifecycle", "mixed")
SYSTEMS = (
    ("ours", "ours"),
    ("snappass", "SnapPass"),
    ("sql", "SQL (pgbench)"),
    ("http", "HTTP ceiling"),
)


PREFACE = """# Benchmark results (issue 9)

Written by `make bench` (`python -m bench all`), or one subcommand at a time; each section
names the command that measured it, when, and under what conditions. Setup and how to
reproduce: bench/README.md."""


def write() -> Path:
    found = {name: results.load(name) for name in sections.ORDER}
    parts = [PREFACE]
    compare = found.pop("compare")
    if compare:
        parts += [sections.header("Side by side", compare), side_by_side(compare), ratios(compare)]
    parts += [sections.render(name, data) for name, data in found.items() if data]
    parts.append(sections.targets({**found, "compare": compare}))
    OUT.write_text("\n\n".join(part.strip() for part in parts if part) + "\n")
    return OUT


def side_by_side(data: dict[str, Any]) -> str:
    groups = by_key(data["runs"])
    header = ["system", "c", "req/s", "p50 ms", "p99 ms", "CPU ms/req (app + store)", "errors"]
    out = []
    for workload in WORKLOADS:
        rows = [
            [label, c, *summary_row(groups.get((system, workload, c), []))]
            for c in sorted({key[2] for key in groups})
            for system, label in SYSTEMS
            if (system, workload, c) in groups
        ]
        unit = " (lifecycles/s in the req/s column)" if workload == "lifecycle" else ""
        out.append(f"### {workload}{unit}\n\n" + table(header, rows))
    return "\n\n".join(out)


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
                    ratio_text(paired_ratio(groups, mine, ("http", workload, c))),
                ]
            )
    header = ["workload", "c", "ours / SnapPass", "ours / SQL ceiling", "ours / HTTP ceiling"]
    note = (
        "Each ratio is the median over repetitions of the ratio within one repetition. "
        "The SQL ceiling runs at the same number of connections as the HTTP load; the "
        "service itself never uses more than its pool (10). The HTTP ceiling answers a "
        "conceal-shaped request, so it has a conceal ratio only."
    )
    return "### Ratios\n\n" + table(header, rows) + "\n\n" + note
