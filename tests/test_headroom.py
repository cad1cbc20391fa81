"""When a request may go on before its rate count is back (app/core/headroom.py): the
rules alone, on a clock of our own."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.headroom import FRESH_SECONDS, Headroom

LIMIT = 1000  # early below 250, at most 15 early counts in flight


@dataclass(frozen=True)
class Key:
    window_seconds: int = 60


def seen(hits: int, now: float = 0.0, ends_in: int = 30) -> Headroom:
    room = Headroom()
    room.sent(Key(), early=False)
    room.returned(Key(), early=False, hits=hits, ends_in=ends_in, now=now)
    return room


def test_an_unknown_client_waits() -> None:
    assert not Headroom().allows_early(Key(), LIMIT, 0.0)


def test_a_fresh_count_far_below_the_limit_lets_requests_go_on() -> None:
    assert seen(10).allows_early(Key(), LIMIT, 0.5)


def test_a_count_older_than_a_second_or_from_a_past_window_says_nothing() -> None:
    assert not seen(10).allows_early(Key(), LIMIT, FRESH_SECONDS + 0.01)
    assert not seen(10, ends_in=1).allows_early(Key(), LIMIT, 1.0)


def test_from_a_quarter_of_the_limit_every_request_waits() -> None:
    assert seen(249).allows_early(Key(), LIMIT, 0.1)
    assert not seen(250).allows_early(Key(), LIMIT, 0.1)


def test_counts_in_flight_count_towards_the_quarter() -> None:
    room = seen(240)
    for _ in range(9):
        room.sent(Key(), early=False)
    assert room.allows_early(Key(), LIMIT, 0.1)  # 240 + 9 in flight
    room.sent(Key(), early=False)
    assert not room.allows_early(Key(), LIMIT, 0.1)  # 240 + 10


def test_early_counts_in_flight_are_capped_by_the_limit() -> None:
    room = seen(0)
    for _ in range(LIMIT // 64):
        assert room.allows_early(Key(), LIMIT, 0.1)
        room.sent(Key(), early=True)
    assert not room.allows_early(Key(), LIMIT, 0.1)
    room.returned(Key(), early=True, hits=1, ends_in=30, now=0.2)
    assert room.allows_early(Key(), LIMIT, 0.2)


def test_a_small_limit_always_waits() -> None:
    assert not seen(0).allows_early(Key(), 63, 0.1)


def test_a_new_window_starts_the_count_again() -> None:
    room = seen(240, now=0.0, ends_in=1)
    room.sent(Key(), early=False)
    room.returned(Key(), early=False, hits=1, ends_in=60, now=1.5)
    assert room.allows_early(Key(), LIMIT, 1.6)


def test_a_count_returned_out_of_order_does_not_lower_what_is_known() -> None:
    room = seen(250)
    room.sent(Key(), early=False)
    room.returned(Key(), early=False, hits=200, ends_in=30, now=0.1)
    assert not room.allows_early(Key(), LIMIT, 0.2)


def test_a_failed_count_teaches_nothing_and_frees_its_place() -> None:
    small = 64  # early below 16, one early count in flight at most
    room = seen(10, now=0.0)
    room.sent(Key(), early=True)
    assert not room.allows_early(Key(), small, 0.1)  # the one early count is out
    room.returned(Key(), early=True, hits=None, ends_in=0, now=0.3)
    assert room.allows_early(Key(), small, 0.4)  # its place is free again
    assert not room.allows_early(Key(), small, 1.05)  # still the count from time 0
