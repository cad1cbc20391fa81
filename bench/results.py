"""One measured run, and the JSON files each subcommand leaves in bench/results/."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import procs

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Run:
    """What one load run measured. CPU is in seconds per request."""

    system: str  # ours, snappass, sql (pgbench), http (the ceiling)
    workload: str
    concurrency: int
    rep: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers, socket errors and timeouts
    app_cpu: float
    db_cpu: float
    rss_mb: float
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Report:
    """A subcommand's findings: the runs, plus anything else it measured."""

    name: str
    command: str
    runs: list[Run] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # the conditions, as the person running it describes them
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"))

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        data = {**asdict(self), "conditions": conditions()}
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    data["runs"] = [Run(**run) for run in data["runs"]]
    return data


def conditions() -> dict[str, Any]:
    """The machine as it was: how busy it was matters as much as its size."""
    load1, load5, _ = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1m_5m": f"{load1} {load5}",
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "code": code_version(),
        "cpu_pressure_avg60": cpu_pressure(),
    }


def cpu_pressure() -> str:
    """Share of the last minute in which some runnable task waited for a CPU (PSI): how
    much else wanted the cores while the run measured."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "unknown"
    return some.split()[2].removeprefix("avg60=") + " %"


def code_version() -> str:
    """The commit the service ran from, and whether its code differed from it."""
    root = RESULTS.parent.parent
    try:
        commit = procs.run([procs.tool("git"), "-C", str(root), "rev-parse", "--short", "HEAD"])
        changed = procs.run(
            [procs.tool("git"), "-C", str(root), "status", "--porcelain", "app", "migrations"]
        )
    except (RuntimeError, SystemExit):
        return "unknown (no git)"
    return commit.strip() + (" with uncommitted changes in app/ or migrations/" if changed else "")
