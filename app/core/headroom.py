"""Which requests may go on before their rate count comes back: those of a client far
below its limit, going by the count this process saw for it a moment ago.

Why: a create waited for two batches in turn, its count and then its write. Not waiting
for the count took a conceal's p50 at 16 connections from 6.4 to 5.3 ms, and its rate up
16 % (bench/FINDINGS.md, tenth round). Far below the limit the verdict is known before
the count returns: the count is made all the same, in the background, and only the wait
is saved.

What keeps it safe:
- Early only below a quarter of the limit (`EARLY_SHARE`), counting every count this
  process has in flight, waited for or not. Within one process a request let through
  early is never over the limit: its place in the count is at most those returned, plus
  those in flight, plus one.
- Only on a count seen within `FRESH_SECONDS`: other pods' counts since then are not in
  it. With at most `limit // IN_FLIGHT_SHARE` (and `MAX_IN_FLIGHT`) early counts in flight
  a process, a client that jumps from under a quarter of its limit to over all of it
  within a second, through several pods at once, gets at most that many requests a pod
  past its limit in that window; nearer the limit every request waits for its count.
- Unknown clients, and small limits (under `IN_FLIGHT_SHARE`), always wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

EARLY_SHARE = 4
IN_FLIGHT_SHARE = 64
MAX_IN_FLIGHT = 64
FRESH_SECONDS = 1.0
MAX_CLIENTS = 10_000  # at this many keys, those with no count in flight are forgotten


class Counted(Protocol):
    """A count's key (app/core/counts.Count): hashable, and the length of its window."""

    @property
    def window_seconds(self) -> int: ...

    def __hash__(self) -> int: ...


@dataclass
class _Seen:
    hits: int = 0  # the highest count returned in this window
    at: float = float("-inf")  # when it came back (loop time)
    window_end: float = float("-inf")
    in_flight: int = 0  # counts sent and not yet returned, waited for or not
    early: int = 0  # of those, the ones whose requests went on without waiting


class Headroom:
    def __init__(self) -> None:
        self._seen: dict[Counted, _Seen] = {}

    def allows_early(self, key: Counted, limit: int, now: float) -> bool:
        seen = self._seen.get(key)
        if seen is None or now - seen.at > FRESH_SECONDS or now >= seen.window_end:
            return False
        cap = min(MAX_IN_FLIGHT, limit // IN_FLIGHT_SHARE)
        return seen.early < cap and seen.hits + seen.in_flight < limit // EARLY_SHARE

    def sent(self, key: Counted, *, early: bool) -> None:
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= MAX_CLIENTS:
                self._forget_idle()
            seen = self._seen[key] = _Seen()
        seen.in_flight += 1
        seen.early += early

    def returned(
        self, key: Counted, *, early: bool, hits: int | None, ends_in: int, now: float
    ) -> None:
        """A count came back (`hits` None: it failed, and nothing is learned from it)."""
        seen = self._seen.get(key)
        if seen is None:  # forgotten meanwhile
            return
        seen.in_flight = max(seen.in_flight - 1, 0)
        seen.early = max(seen.early - early, 0)
        if hits is None:
            return
        window_end = now + ends_in
        if window_end > seen.window_end + key.window_seconds / 2:  # the first of a window
            seen.hits = hits
        else:  # batches in flight together may come back in either order
            seen.hits = max(seen.hits, hits)
        seen.window_end, seen.at = window_end, now

    def _forget_idle(self) -> None:
        self._seen = {key: seen for key, seen in self._seen.items() if seen.in_flight}
