"""Reading py-spy's collapsed stacks (`--format raw`): where the samples fall, by function
(self and inclusive) and by package."""

from __future__ import annotations

import re
from collections import Counter

TOP = 12
# Frames on every stack (the entry point) or around every handler (middlewares).
_WRAPPERS = ("middleware", "app/workers.py", "app/commands.py", "app/__main__.py")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def summarize(raw: str) -> dict[str, object]:
    stacks = _parse(raw)
    total = sum(stacks.values()) or 1
    own, nearest, packages = Counter[str](), Counter[str](), Counter[str]()
    for frames, count in stacks.items():
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        nearest[_nearest_app(frames)] += count

    def share(counter: Counter[str], keep: int = TOP) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(keep)]

    return {
        "samples": total,
        "self": share(own),
        "packages": share(packages),
        "nearest_app": share(nearest),
    }


def _nearest_app(frames: tuple[str, ...]) -> str:
    """The service's own function closest to the leaf: the code that asked for the work
    (its own time plus the libraries it called). Middlewares only wrap the handler."""
    for frame in reversed(frames):
        if _package(frame) == "app" and not any(skip in frame for skip in _WRAPPERS):
            return frame
    return "(none: event loop, HTTP server, driver callbacks)"


def _parse(raw: str) -> Counter[tuple[str, ...]]:
    stacks = Counter[tuple[str, ...]]()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(_name(frame) for frame in stack.split(";"))] += int(count)
    return stacks


def _name(frame: str) -> str:
    """`function (path/file.py:12)` -> `function (path/file.py)`: lines differ per sample."""
    match = _FRAME.match(frame.strip())
    return f"{match['function']} ({match['file']})" if match else frame.strip()


def _package(frame: str) -> str:
    """The top-level package (or stdlib module) a frame's file belongs to."""
    match = _FRAME.match(frame)
    if not match:
        return "other"
    path = match["file"].replace("\\", "/")
    if "/site-packages/" in path:
        path = path.split("/site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    elif "/app/" in path:
        return "app"
    top = path.split("/", 1)[0]
    return top.removesuffix(".py") or "other"
