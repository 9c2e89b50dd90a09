"""The brake on repeated admin authentication failures, per peer, with a clock the test moves."""

from __future__ import annotations

from proxy.admin.auth import FIRST_BLOCK_S, FORGET_S, FREE_FAILURES, MAX_BLOCK_S, AuthThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_peer_may_fail_a_few_times_then_waits_longer_after_each_further_failure_up_to_a_cap() -> None:
    clock = Clock()
    throttle = AuthThrottle(clock=clock)
    for attempt in range(1, FREE_FAILURES):
        assert throttle.failed("10.0.0.1") == (attempt, None)
        assert throttle.retry_after("10.0.0.1") is None
    blocks = []
    for _ in range(8):
        _, block = throttle.failed("10.0.0.1")
        assert block is not None
        assert throttle.retry_after("10.0.0.1") == block
        clock.now += block  # the peer waits exactly as long as it is told
        assert throttle.retry_after("10.0.0.1") is None
        blocks.append(block)
    assert blocks[0] == FIRST_BLOCK_S
    assert blocks == sorted(blocks)
    assert blocks[-1] == MAX_BLOCK_S


def test_other_peers_are_not_throttled_and_a_success_forgets_the_peer() -> None:
    clock = Clock()
    throttle = AuthThrottle(clock=clock)
    for _ in range(FREE_FAILURES):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is not None
    assert throttle.retry_after("10.0.0.2") is None
    clock.now += MAX_BLOCK_S
    throttle.succeeded("10.0.0.1")
    assert throttle.failed("10.0.0.1") == (1, None)


def test_failures_spread_wider_than_the_forget_time_never_throttle() -> None:
    clock = Clock()
    throttle = AuthThrottle(clock=clock)
    for _ in range(FREE_FAILURES * 3):
        assert throttle.failed("10.0.0.1") == (1, None)
        clock.now += FORGET_S


def test_the_table_of_peers_stays_bounded_dropping_the_least_recent() -> None:
    throttle = AuthThrottle(clock=Clock(), max_peers=100)
    for _ in range(FREE_FAILURES):
        throttle.failed("attacker")
    for i in range(99):
        throttle.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    assert throttle.retry_after("attacker") is not None
    for i in range(1000):
        throttle.failed(f"10.2.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    assert throttle.retry_after("attacker") is None  # forgotten: memory is bounded, not the attacker's
