"""Automatic rollback: the candidate's error rate over a sliding window, per route; trip and reset.

Owns: GuardPolicy, RouteGuard (one route's window and tripped state) and Guards (every route's guard,
kept in step with reloads). Pure: no I/O, no logging, no metrics; time comes from an injected clock,
so tests move it by hand. The caller (state.py) logs, exports and enforces what this decides.

A tripped guard stays tripped until `reset()` (the admin endpoint) or until the route's definition in
routes.yaml changes (a new fingerprint): an unrelated reload keeps the state, so a reload can never
silently undo an automatic rollback.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Clock", "GuardPolicy", "Guards", "RouteGuard", "Trip"]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    max_error_rate: float  # errors / requests above which the guard trips, 0..1
    min_requests: int  # fewer candidate requests in the window never trip it
    window_s: float


@dataclass(frozen=True, slots=True)
class Trip:
    """Why a guard tripped, for the ERROR log and the admin API."""

    route: str
    errors: int
    requests: int
    rate: float
    at: float

    def describe(self, policy: GuardPolicy) -> str:
        return (
            f"candidate error rate {self.rate:.3f} ({self.errors}/{self.requests}) over {policy.window_s:g}s "
            f"crossed max_error_rate {policy.max_error_rate:g}: route {self.route!r} rolled back to 0%"
        )


class RouteGuard:
    """One route's window of candidate outcomes, in one-second buckets (memory bounded by window_s)."""

    def __init__(self, route: str, policy: GuardPolicy, *, clock: Clock) -> None:
        self.route = route
        self.policy = policy
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, requests, errors], oldest first
        self._requests = 0
        self._errors = 0
        self.trip: Trip | None = None

    @property
    def tripped(self) -> bool:
        return self.trip is not None

    def record(self, *, error: bool) -> Trip | None:
        """Count one candidate outcome; returns the Trip when this very outcome tripped the guard."""
        now = self._clock()
        self._expire(now)
        second = math.floor(now)
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
        else:
            bucket = [second, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += 1
        self._requests += 1
        if error:
            bucket[2] += 1
            self._errors += 1
        if self.trip is not None or self._requests < self.policy.min_requests:
            return None
        rate = self._errors / self._requests
        if rate > self.policy.max_error_rate:
            self.trip = Trip(self.route, self._errors, self._requests, rate, now)
            return self.trip
        return None

    def counts(self) -> tuple[int, int]:
        """(requests, errors) inside the window now."""
        self._expire(self._clock())
        return self._requests, self._errors

    def reset(self) -> bool:
        """Clear the trip and the window (old errors must not re-trip it at once); True if it was tripped."""
        was = self.trip is not None
        self.trip = None
        self._buckets.clear()
        self._requests = self._errors = 0
        return was

    def _expire(self, now: float) -> None:
        oldest = math.floor(now - self.policy.window_s)
        while self._buckets and self._buckets[0][0] <= oldest:
            _, requests, errors = self._buckets.popleft()
            self._requests -= requests
            self._errors -= errors


class Guards:
    """Route name -> RouteGuard, for the routes that have a guard block."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._guards: dict[str, tuple[str, RouteGuard]] = {}  # name -> (fingerprint, guard)

    def sync(self, routes: Iterable[tuple[str, str, GuardPolicy | None]]) -> list[str]:
        """Follow a new table: (name, fingerprint of the route's definition, policy) per route.

        A route whose fingerprint is unchanged keeps its guard, tripped or not. A changed route gets a
        fresh guard (the operator edited it: that is a reset). Returns the names whose guard was reset.
        """
        fresh: dict[str, tuple[str, RouteGuard]] = {}
        cleared: list[str] = []
        for name, fingerprint, policy in routes:
            if policy is None:
                continue
            old = self._guards.get(name)
            if old is not None and old[0] == fingerprint:
                fresh[name] = old
                continue
            if old is not None and old[1].tripped:
                cleared.append(name)
            fresh[name] = (fingerprint, RouteGuard(name, policy, clock=self._clock))
        gone = [name for name, (_, guard) in self._guards.items() if name not in fresh and guard.tripped]
        cleared.extend(gone)
        self._guards = fresh
        return cleared

    def get(self, route: str) -> RouteGuard | None:
        entry = self._guards.get(route)
        return entry[1] if entry is not None else None

    def is_tripped(self, route: str) -> bool:
        entry = self._guards.get(route)
        return entry is not None and entry[1].trip is not None

    def tripped(self) -> Mapping[str, Trip]:
        return {name: guard.trip for name, (_, guard) in self._guards.items() if guard.trip is not None}

    def names(self) -> list[str]:
        return list(self._guards)
