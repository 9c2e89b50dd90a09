"""A circuit breaker per upstream: consecutive connection failures open it; a probe closes it again.

Owns: BreakerPolicy, CircuitBreaker (closed -> open -> half_open -> closed | open) and Breakers (one per
upstream name). Pure: no I/O, no metrics; time comes from an injected clock. Transitions are returned
to the caller (state.py), which exports `strangler_circuit_*` and logs them.

While open, `allow()` says no at once: a dead upstream costs the client no connect attempt and no
timeout. After the back-off one request is let through as a probe (half_open); its success closes the
breaker, its failure reopens it with the back-off doubled (up to max_open_s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["STATES", "BreakerPolicy", "Breakers", "CircuitBreaker", "Clock", "State"]

Clock = Callable[[], float]
State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5  # consecutive connection failures that open the breaker
    open_s: float = 5.0  # first back-off
    max_open_s: float = 60.0  # the back-off doubles on every failed probe, up to this


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, *, clock: Clock) -> None:
        self.policy = policy
        self._clock = clock
        self.state: State = "closed"
        self._failures = 0
        self._open_for = policy.open_s
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> tuple[bool, State | None]:
        """May a request be sent now? Also returns the transition this caused (open -> half_open)."""
        if self.state == "closed":
            return True, None
        if self.state == "open":
            if self._clock() - self._opened_at < self._open_for:
                return False, None
            self.state = "half_open"
            self._probing = True
            return True, "half_open"
        if self._probing:  # half_open: one probe at a time; the others fail fast until it answers
            return False, None
        self._probing = True
        return True, None

    def refusing(self) -> bool:
        """Open and still backing off: a read-only check that never starts a probe."""
        return self.state == "open" and self._clock() - self._opened_at < self._open_for

    def success(self) -> State | None:
        """The upstream answered (any status: the connection works). Returns the transition, if any."""
        self._failures = 0
        self._probing = False
        if self.state == "closed":
            return None
        self.state = "closed"
        self._open_for = self.policy.open_s
        return "closed"

    def failure(self) -> State | None:
        """A connection failure (refused, reset, connect timeout). Returns the transition, if any."""
        self._probing = False
        if self.state == "half_open":
            self._open_for = min(self._open_for * 2, self.policy.max_open_s)
            return self._open()
        if self.state == "open":
            return None
        self._failures += 1
        if self._failures >= self.policy.failures:
            return self._open()
        return None

    def abandon(self) -> None:
        """The allowed request ended without telling anything about the upstream (client gone)."""
        self._probing = False

    def _open(self) -> State:
        self.state = "open"
        self._opened_at = self._clock()
        self._failures = 0
        return "open"


class Breakers:
    """Upstream name -> CircuitBreaker, kept in step with reloads (a re-pointed upstream starts closed)."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._breakers: dict[str, tuple[tuple[str, BreakerPolicy], CircuitBreaker]] = {}

    def sync(self, upstreams: Iterable[tuple[str, str, BreakerPolicy]]) -> list[str]:
        """(name, url, policy) per upstream. Returns the names that were dropped or replaced."""
        fresh: dict[str, tuple[tuple[str, BreakerPolicy], CircuitBreaker]] = {}
        for name, url, policy in upstreams:
            old = self._breakers.get(name)
            if old is not None and old[0] == (url, policy):
                fresh[name] = old
            else:
                fresh[name] = ((url, policy), CircuitBreaker(policy, clock=self._clock))
        gone = [name for name, old in self._breakers.items() if fresh.get(name) is not old]
        self._breakers = fresh
        return gone

    def for_upstream(self, name: str, url: str, policy: BreakerPolicy) -> CircuitBreaker:
        """The breaker of one upstream, made on first use; a re-pointed upstream gets a closed one."""
        old = self._breakers.get(name)
        if old is not None and old[0] == (url, policy):
            return old[1]
        breaker = CircuitBreaker(policy, clock=self._clock)
        self._breakers[name] = ((url, policy), breaker)
        return breaker

    def get(self, upstream: str) -> CircuitBreaker | None:
        entry = self._breakers.get(upstream)
        return entry[1] if entry is not None else None

    def states(self) -> dict[str, State]:
        return {name: breaker.state for name, (_, breaker) in self._breakers.items()}
