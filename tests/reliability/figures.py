"""The figures a reliability test publishes: printed (see them with `pytest -s`) and, when
OTS_RELIABILITY_FIGURES names a file, appended to it as one JSON line, from which
`python -m tests.reliability.report` writes the table in docs/RELIABILITY.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "OTS_RELIABILITY_FIGURES"


def publish(test: str, **figures: object) -> None:
    line = json.dumps({"test": test, **figures}, sort_keys=False)
    print(f"\nFIGURES {line}")
    target = os.environ.get(ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(line + "\n")
