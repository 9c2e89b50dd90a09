"""The proxy as an HTTP client: how a failed call is classified, how its end is booked on a breaker, the
per-call timeouts and the one session factory (proxy/client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.client import (
    CircuitOpen,
    UpstreamError,
    settle,
)
from proxy.dataplane.errors import BodyTooLarge
from proxy.dataplane.upstreams import UpstreamBusy
from proxy.resilience.breaker import BreakerPolicy, CircuitBreaker

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=5.0)  # bounds, never asserted on


# -- CircuitOpen ----------------------------------------------------------------------------------------
def test_an_open_circuit_is_a_502_that_says_the_upstream_was_not_tried_and_is_no_connection_failure() -> None:
    error = CircuitOpen("new")
    assert (error.kind, error.status, error.code) == ("connect", 502, "upstream_unreachable")
    assert error.connection_failure is False
    assert "'new'" in str(error)


# -- settle ----------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = BreakerPolicy(failures=3, open_s=5.0, max_open_s=20.0)
CONNECTION_FAILURES = [  # as proxy.upstream raises them
    UpstreamError("connect", timeout=False, detail="refused", connection_failure=True),
    UpstreamError("reset", timeout=False, detail="reset before the head", connection_failure=True),
    UpstreamError("timeout", timeout=True, detail="connect timed out", connection_failure=True),
]
SAYS_NOTHING = [
    UpstreamError("timeout", timeout=True, detail="no head in time"),  # slow, not unreachable
    UpstreamError("protocol", timeout=False, detail="a body cut short"),
    UpstreamBusy("new", 4),  # our own cap refused it: nothing was sent
    asyncio.CancelledError(),  # the client went away
    BodyTooLarge(),  # the client's body was refused
]


def names(errors: Sequence[BaseException]) -> list[str]:
    return [f"{type(error).__name__}-{getattr(error, 'kind', '')}" for error in errors]


def open_breaker(clock: Clock) -> CircuitBreaker:
    breaker = CircuitBreaker(POLICY, clock=clock)
    for _ in range(POLICY.failures):
        settle(breaker, CONNECTION_FAILURES[0])
    assert breaker.state == "open"
    return breaker


def test_an_answer_keeps_a_closed_breaker_closed_and_reports_no_transition() -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    assert settle(breaker, None) is None
    assert breaker.state == "closed"


@pytest.mark.parametrize("error", CONNECTION_FAILURES, ids=names(CONNECTION_FAILURES))
def test_consecutive_connection_failures_open_the_breaker(error: UpstreamError) -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    assert [settle(breaker, error) for _ in range(POLICY.failures)] == [None, None, "open"]
    assert breaker.state == "open"
    assert breaker.allow() == (False, None)


def test_an_answer_between_connection_failures_starts_the_count_again() -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    settle(breaker, CONNECTION_FAILURES[0])
    settle(breaker, CONNECTION_FAILURES[0])
    settle(breaker, None)
    settle(breaker, CONNECTION_FAILURES[0])
    assert settle(breaker, CONNECTION_FAILURES[0]) is None
    assert breaker.state == "closed"


@pytest.mark.parametrize("error", SAYS_NOTHING, ids=names(SAYS_NOTHING))
def test_a_call_that_says_nothing_about_reachability_neither_counts_nor_clears_failures(
    error: BaseException,
) -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    settle(breaker, CONNECTION_FAILURES[0])
    settle(breaker, CONNECTION_FAILURES[0])
    assert [settle(breaker, error) for _ in range(5)] == [None] * 5
    assert breaker.state == "closed"
    assert settle(breaker, CONNECTION_FAILURES[0]) == "open"  # the third connection failure in a row


@pytest.mark.parametrize("error", SAYS_NOTHING, ids=names(SAYS_NOTHING))
def test_a_probe_that_says_nothing_is_abandoned_so_the_next_request_may_probe(error: BaseException) -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.now += POLICY.open_s
    assert breaker.allow() == (True, "half_open")
    assert breaker.allow() == (False, None)  # one probe at a time
    assert settle(breaker, error) is None
    assert breaker.state == "half_open"
    assert breaker.allow() == (True, None)


def test_an_answered_probe_closes_the_breaker_and_a_failed_one_opens_it_again() -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.now += POLICY.open_s
    breaker.allow()
    assert settle(breaker, CONNECTION_FAILURES[0]) == "open"
    clock.now += 2 * POLICY.open_s  # the back-off doubled
    assert breaker.allow() == (True, "half_open")
    assert settle(breaker, None) == "closed"
    assert breaker.allow() == (True, None)
