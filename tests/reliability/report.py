"""Writes the figures of the last reliability run into docs/RELIABILITY.md.

    python -m tests.reliability.report FIGURES.jsonl docs/RELIABILITY.md

The table between the two FIGURES markers is replaced; the rest of the page is prose.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

BEGIN, END = "<!-- FIGURES BEGIN -->", "<!-- FIGURES END -->"


def table(lines: list[str]) -> str:
    rows = [json.loads(line) for line in lines if line.strip()]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"Last run: {stamp}.", "", "| test | figures |", "|---|---|"]
    for row in rows:
        name = row.pop("test")
        figures = ", ".join(
            f"{key} {value if key == 'seed' else _show(value)}" for key, value in row.items()
        )
        out.append(f"| `{name}` | {figures} |")
    return "\n".join(out)


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{key} {_show(item)}" for key, item in value.items()) + ")"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def rewrite(page: str, figures: str) -> str:
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{figures}\n{END}{tail}"


def main(figures_path: str, page_path: str) -> None:
    lines = Path(figures_path).read_text(encoding="utf-8").splitlines()
    page = Path(page_path)
    page.write_text(rewrite(page.read_text(encoding="utf-8"), table(lines)), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
