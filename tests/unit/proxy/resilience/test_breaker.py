"""The circuit breaker: consecutive connection failures open it, a probe after the back-off closes it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.resilience.breaker import BreakerPolicy, Breakers, CircuitBreaker

POLICY = BreakerPolicy(failures=3, open_s=5, max_open_s=20)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_consecutive_failures_open_the_breaker_and_an_open_breaker_refuses_at_once() -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    assert [breaker.failure() for _ in range(3)] == [None, None, "open"]
    assert breaker.allow() == (False, None)


def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    breaker.failure()
    breaker.failure()
    assert breaker.success() is None
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed"


def test_after_the_back_off_one_probe_goes_through_and_its_success_closes_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(POLICY, clock=clock)
    for _ in range(3):
        breaker.failure()
    clock.now += 5
    assert breaker.allow() == (True, "half_open")
    assert breaker.allow() == (False, None)  # one probe at a time
    assert breaker.success() == "closed"
    assert breaker.allow() == (True, None)


def test_a_failed_probe_reopens_the_breaker_with_a_doubled_back_off_up_to_the_maximum() -> None:
    clock = Clock()
    breaker = CircuitBreaker(POLICY, clock=clock)
    for _ in range(3):
        breaker.failure()
    waits = []
    for _ in range(4):
        waited = 0
        while not breaker.allow()[0]:
            clock.now += 1
            waited += 1
        waits.append(waited)
        assert breaker.failure() == "open"
    assert waits == [5, 10, 20, 20]


def test_an_abandoned_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(POLICY, clock=clock)
    for _ in range(3):
        breaker.failure()
    clock.now += 5
    assert breaker.allow()[0]
    breaker.abandon()
    assert breaker.allow() == (True, None)


def test_a_reload_keeps_breakers_of_unchanged_upstreams_and_replaces_re_pointed_ones() -> None:
    breakers = Breakers(clock=Clock())
    breakers.sync([("legacy", "http://a", POLICY), ("new", "http://b", POLICY)])
    new = breakers.get("new")
    assert new is not None
    for _ in range(3):
        new.failure()
    assert breakers.sync([("legacy", "http://a", POLICY), ("new", "http://b", POLICY)]) == []
    assert breakers.states() == {"legacy": "closed", "new": "open"}
    assert breakers.sync([("legacy", "http://a", POLICY), ("new", "http://c", POLICY)]) == ["new"]
    assert breakers.states()["new"] == "closed"


@given(events=st.lists(st.sampled_from(["allow", "ok", "fail", "tick"]), max_size=100))
def test_an_open_breaker_never_lets_a_request_through_before_its_back_off_ends(events: list[str]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(POLICY, clock=clock)
    for event in events:
        if event == "tick":
            clock.now += 1
        elif event == "ok":
            breaker.success()
        elif event == "fail":
            breaker.failure()
        else:
            state = breaker.state
            allowed, _ = breaker.allow()
            if state == "open" and allowed:
                assert breaker.state == "half_open"
            if state == "closed":
                assert allowed


def test_refusing_is_a_read_only_check_that_never_starts_a_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(POLICY, clock=clock)
    assert not breaker.refusing()
    for _ in range(3):
        breaker.failure()
    assert breaker.refusing()
    clock.now += POLICY.open_s
    assert not breaker.refusing()  # the back-off is over: a caller may try (and allow() decides)
    assert breaker.state == "open"  # ...but asking did not move it to half_open
    assert breaker.allow() == (True, "half_open")


def test_for_upstream_keeps_a_breaker_until_the_upstream_is_re_pointed() -> None:
    breakers = Breakers(clock=Clock())
    first = breakers.for_upstream("new", "http://a:1", POLICY)
    assert breakers.for_upstream("new", "http://a:1", POLICY) is first
    for _ in range(3):
        first.failure()
    moved = breakers.for_upstream("new", "http://b:1", POLICY)
    assert moved is not first
    assert moved.state == "closed"
