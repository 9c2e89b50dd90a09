"""The shadow cost budget: a token bucket per route, per replica, with the clock passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.shadow.budget import TokenBucket


def test_a_burst_gets_at_most_the_budget_then_nothing_until_it_refills() -> None:
    bucket = TokenBucket(5, now=0.0)
    assert [bucket.take(0.0) for _ in range(8)] == [True] * 5 + [False] * 3
    assert not bucket.take(11.9)  # 5 a minute: one token every 12 s
    assert bucket.take(12.0)
    assert not bucket.take(12.0)


def test_a_long_idle_spell_refills_only_up_to_the_budget() -> None:
    bucket = TokenBucket(3, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(3)) == 3
    assert sum(bucket.take(3600.0) for _ in range(10)) == 3


def test_a_clock_that_steps_back_never_mints_tokens() -> None:
    bucket = TokenBucket(2, now=100.0)
    assert bucket.take(100.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(100.0)


@given(per_minute=st.integers(1, 600), times=st.lists(st.floats(0, 600), max_size=300))
def test_copies_over_any_run_never_exceed_the_burst_plus_the_refill(
    per_minute: int, times: list[float]
) -> None:
    bucket = TokenBucket(per_minute, now=0.0)
    times.sort()
    taken = sum(bucket.take(at) for at in times)
    span = times[-1] if times else 0.0
    assert taken <= per_minute + span * per_minute / 60 + 1e-9
