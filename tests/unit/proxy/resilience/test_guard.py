"""The guard: the candidate's error rate over a window trips it; only a reset or a route edit clears it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from proxy.resilience.guard import GuardPolicy, Guards, RouteGuard

POLICY = GuardPolicy(max_error_rate=0.2, min_requests=10, window_s=60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_errors_above_the_rate_trip_the_guard_once_enough_requests_were_seen() -> None:
    clock = Clock()
    guard = RouteGuard("images", POLICY, clock=clock)
    trips = [guard.record(error=True) for _ in range(9)]
    assert trips == [None] * 9
    assert not guard.tripped
    trip = guard.record(error=True)
    assert trip is not None
    assert guard.tripped
    assert (trip.errors, trip.requests) == (10, 10)
    assert "rolled back to 0%" in trip.describe(POLICY)
    assert guard.record(error=True) is None  # reported once


def test_a_rate_at_the_threshold_does_not_trip_but_one_more_error_does() -> None:
    guard = RouteGuard("images", POLICY, clock=Clock())
    for index in range(10):
        guard.record(error=index < 2)  # 2/10 = 0.2: not above
    assert not guard.tripped
    assert guard.record(error=True) is not None  # 3/11 > 0.2


def test_errors_older_than_the_window_no_longer_count() -> None:
    clock = Clock()
    guard = RouteGuard("images", POLICY, clock=clock)
    for _ in range(5):
        guard.record(error=True)
    clock.now += 61
    assert guard.counts() == (0, 0)
    for _ in range(20):
        guard.record(error=False)
    assert not guard.tripped


def test_reset_clears_the_trip_and_the_window() -> None:
    guard = RouteGuard("images", POLICY, clock=Clock())
    for _ in range(10):
        guard.record(error=True)
    assert guard.reset() is True
    assert not guard.tripped
    assert guard.counts() == (0, 0)
    assert guard.reset() is False


def test_an_unrelated_reload_keeps_a_tripped_guard_and_a_changed_route_resets_it() -> None:
    guards = Guards(clock=Clock())
    guards.sync([("images", "v1", POLICY), ("orders", "o1", POLICY)])
    guard = guards.get("images")
    assert guard is not None
    for _ in range(10):
        guard.record(error=True)
    assert guards.sync([("images", "v1", POLICY), ("orders", "o2", POLICY)]) == []
    assert guards.is_tripped("images")
    assert guards.get("images") is guard
    assert guards.sync([("images", "v2", POLICY)]) == ["images"]
    assert not guards.is_tripped("images")


def test_a_route_without_a_guard_block_has_no_guard() -> None:
    guards = Guards(clock=Clock())
    guards.sync([("images", "v1", None)])
    assert guards.get("images") is None
    assert not guards.is_tripped("images")


@given(outcomes=st.lists(st.tuples(st.booleans(), st.floats(0, 5)), max_size=200))
def test_the_guard_trips_exactly_when_the_windowed_rate_first_crosses_the_threshold(
    outcomes: list[tuple[bool, float]],
) -> None:
    clock = Clock()
    guard = RouteGuard("r", GuardPolicy(max_error_rate=0.3, min_requests=5, window_s=10), clock=clock)
    history: list[tuple[float, bool]] = []
    for error, step in outcomes:
        clock.now += step
        was = guard.tripped
        trip = guard.record(error=error)
        history.append((clock.now, error))
        live = [e for t, e in history if math.floor(t) > math.floor(clock.now - 10)]
        expected = not was and len(live) >= 5 and sum(live) / len(live) > 0.3
        assert (trip is not None) == expected
        if was:
            assert guard.tripped  # nothing but reset clears it
