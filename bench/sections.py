"""The sections of RESULTS.md after the side-by-side tables, and the targets of issue 9."""

from __future__ import annotations

from typing import Any

from bench.tables import summary_row, table
from bench.targets import rows as target_rows

ORDER = ("compare", "passphrase", "lag", "size", "sweeper", "rss", "profile")
TITLES = {
    "passphrase": "Passphrase (argon2id per request)",
    "lag": "Event-loop lag under passphrase load",
    "size": "Flat with size",
    "sweeper": "Sweeper under lifecycle load",
    "rss": "RSS over a long run",
    "profile": "Profile and SQL round trips",
}
RUN_HEADER = [
    "workload",
    "c",
    "req/s",
    "p50 ms",
    "p99 ms",
    "CPU ms/req (app + db)",
    "errors",
    "note",
]


def header(title: str, data: dict[str, Any]) -> str:
    cond = data["conditions"]
    note = f"\n\n**Conditions:** {data['note']}" if data.get("note") else ""
    return (
        f"## {title}\n\n`{data['command']}`, started {data['started']}; load average "
        f"(1 min, 5 min) at the end: {cond['load_average_1m_5m']}, {cond['cpus']} CPUs; "
        f"CPU pressure (avg60) {cond.get('cpu_pressure_avg60', 'unknown')}; "
        f"code {cond.get('code', 'unknown')}." + note
    )


def runs_table(runs: list[Any]) -> str:
    rows = [[r.workload, r.concurrency, *summary_row([r]), r.note] for r in runs]
    return table(RUN_HEADER, rows)


def render(name: str, data: dict[str, Any]) -> str:
    body = {
        "passphrase": lambda: runs_table(data["runs"]),
        "lag": lambda: _lag(data),
        "size": lambda: runs_table(data["runs"]),
        "sweeper": lambda: _sweeper(data),
        "rss": lambda: _rss(data),
        "profile": lambda: _profile(data),
    }[name]()
    return header(TITLES[name], data) + "\n\n" + body


def _lag(data: dict[str, Any]) -> str:
    extra = data["extra"]
    rows = [
        [when, s["probes"], s["p50_ms"], s["p99_ms"], s["max_ms"]]
        for when, s in (("idle", extra["idle"]), ("under load", extra["busy"]))
    ]
    probe = table(["GET /healthz", "probes", "p50 ms", "p99 ms", "max ms"], rows)
    return (
        "The service has no loop-lag metric: a probe outside it times GET /healthz every "
        f"20 ms while conceal-with-passphrase runs at {extra['concurrency']} connections. "
        "That bounds the loop's lag from above.\n\n" + probe + "\n\n" + runs_table(data["runs"])
    )


def _sweeper(data: dict[str, Any]) -> str:
    x = data["extra"]
    drains = x.get("drains", [x])
    text = " ".join(
        _swept(d, f"the saturating lifecycle load (drain {n} of {len(drains)})")
        for n, d in enumerate(drains, 1)
    )
    if "paced" in x:
        text += " " + _swept(x["paced"], "the paced lifecycle load (bench/sweeper.py)")
    return (
        text + " Rows: each load before its backlog, then during the sweep (lifecycles/s in the"
        " req/s column), in the order they ran.\n\n" + runs_table(data["runs"])
    )


def _swept(x: dict[str, Any], load: str) -> str:
    done = "all of them" if x["left"] == 0 else f"{x['left']:,} still left when the window closed"
    text = (
        f"{x['expired_rows']:,} expired secrets (their receipts still live), swept while "
        f"{load} ran: **{x['rows_per_second']:,.0f} rows/s** over {x['seconds']:.0f} s, {done}"
    )
    if "p99_rise_pct" in x:  # results from before the repeated drains lack it
        text += (
            f"; the load's p99 {x['p99_before_ms']:.0f} -> {x['p99_during_ms']:.0f} ms"
            f" ({x['p99_rise_pct']:+.0f} %)"
        )
    return text + "."


def _rss(data: dict[str, Any]) -> str:
    x = data["extra"]
    rows = [[r.rep, r.requests, round(r.rps), r.rss_mb] for r in data["runs"]]
    return (
        f"{x['requests']:,} lifecycle requests: RSS {x['first_mb']:.1f} MiB after the first "
        f"segment, {x['last_mb']:.1f} MiB after the last: **{x['growth_pct']:+.1f} %**.\n\n"
        + table(["segment", "requests", "req/s", "RSS MiB"], rows)
    )


def _profile(data: dict[str, Any]) -> str:
    parts = []
    for name in ("conceal", "reveal"):
        trips, hot = data["extra"][f"trips_{name}"], data["extra"][f"hot_{name}"]
        parts.append(
            f"### {name}: {trips['round_trips']} round trips per request\n\n"
            + table(["statement", "calls/request"], trips["statements"][:14])
            + f"\n\npy-spy, {hot['samples']} samples of the running server; % of samples:\n\n"
            + table(["self time: function", "%"], hot["self"])
            + "\n\n"
            + table(["by package (self)", "%"], hot["packages"])
            + "\n\n"
            + table(
                ["nearest app function (with the libraries it called)", "%"], hot["nearest_app"]
            )
        )
    return "\n\n".join([runs_table(data["runs"]), *parts])


def targets(found: dict[str, Any]) -> str:
    return "## Targets of issue 9\n\n" + table(["target", "measured", "met"], target_rows(found))
