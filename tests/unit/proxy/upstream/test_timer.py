"""The read timer's policy, on a connection with a fake clock and transport: only the upstream's time
counts, and a request still going out counts as the upstream's only while it reads none of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from proxy.upstream import timer
from proxy.upstream.connection import Connection
from proxy.upstream.state import BODY, FAILED, HEAD

TIMEOUT_S = 10.0


@dataclass
class Clock:
    """The bits of an event loop the timer uses: the time, and call_at (recorded, never run)."""

    now: float = 100.0
    calls: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> object:
        self.calls.append(when)
        return object()


@dataclass
class Transport:
    unsent: int = 0
    aborted: bool = False

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def abort(self) -> None:
        self.aborted = True


class Owner:
    def put(self, conn: Connection) -> None: ...
    def discard(self, conn: Connection) -> None: ...


def connection(phase: int, **state: Any) -> tuple[Connection, Clock, Transport]:
    clock, transport = Clock(), Transport()
    conn = Connection(Owner(), "http://upstream", clock)  # type: ignore[arg-type]
    conn.transport = transport  # type: ignore[assignment]
    conn.read_timeout = TIMEOUT_S
    timer.arm(conn, clock.now)
    conn.phase = phase
    for name, value in state.items():
        setattr(conn, name, value)
    return conn, clock, transport


def test_bytes_that_came_since_the_timer_was_set_push_the_deadline_back() -> None:
    conn, clock, _ = connection(BODY)
    clock.now += TIMEOUT_S
    conn.last = clock.now - 1.0  # a chunk a second ago

    timer.expire(conn)

    assert (conn.phase, clock.calls[-1]) == (BODY, clock.now - 1.0 + TIMEOUT_S)


@pytest.mark.parametrize(("phase", "what"), [(HEAD, "sent no response head"), (BODY, "sent no body bytes")])
def test_silence_for_the_read_timeout_fails_the_exchange(phase: int, what: str) -> None:
    conn, clock, transport = connection(phase)
    clock.now += TIMEOUT_S

    timer.expire(conn)

    assert conn.phase == FAILED
    assert conn.error is not None
    assert what in str(conn.error)
    assert (conn.error.kind, conn.error.connection_failure) == ("timeout", False)
    assert transport.aborted


@pytest.mark.parametrize(
    "state",
    [{"phase": BODY, "read_paused": True}, {"phase": HEAD, "sending": True}],
    ids=["reader", "source"],
)
def test_time_the_upstream_spends_waiting_on_us_never_counts(state: dict[str, Any]) -> None:
    conn, clock, _ = connection(**state)
    for _ in range(3):
        clock.now += TIMEOUT_S

        timer.expire(conn)

        assert conn.phase == state["phase"]
        assert clock.calls[-1] == clock.now + TIMEOUT_S


def test_a_request_still_going_out_is_the_upstreams_to_read_and_a_stall_in_reading_it_fails() -> None:
    conn, clock, transport = connection(HEAD, sending=True)
    for unsent in (8_000_000, 5_000_000, 1_000):  # the first look takes the measure; then it shrinks
        transport.unsent = unsent
        clock.now += TIMEOUT_S

        timer.expire(conn)

        assert conn.phase == HEAD

    clock.now += TIMEOUT_S
    timer.expire(conn)  # not one byte more read in a read timeout

    assert conn.phase == FAILED
    assert conn.error is not None
    assert "stopped reading the request" in str(conn.error)


def test_a_timer_of_an_exchange_that_ended_does_nothing() -> None:
    conn, clock, transport = connection(FAILED)
    clock.now += 5 * TIMEOUT_S

    timer.expire(conn)

    assert (len(clock.calls), transport.aborted) == (1, False)
