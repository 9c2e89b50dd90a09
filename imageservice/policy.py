"""The saga's knobs: how long keys live, how hard undoing and settling try. Values only, no behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Backoff", "Policy"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits before each attempt: `first_s`, doubling, capped at `max_s`; `attempts` in all."""

    attempts: int = 12
    first_s: float = 0.5
    max_s: float = 15.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        for _ in range(max(1, self.attempts)):
            yield delay
            delay = min(self.max_s, delay * 2)

    @property
    def budget_s(self) -> float:
        return sum(self.delays())


@dataclass(frozen=True, slots=True)
class Policy:
    idempotency_ttl_s: float = 24 * 3600
    in_progress_ttl_s: float = 900.0  # a crashed holder frees its key after this long
    compensation_attempts: int = 3  # inline, while the request waits
    compensation_backoff_s: float = 0.05
    # After a metadata write failed: how often to read it back before the outcome counts as unknown.
    verify_attempts: int = 3
    # What the request could not finish (a key release, an unknown commit) goes on in the background
    # with this backoff: by default about two minutes over 12 attempts.
    settle: Backoff = Backoff()
    shutdown_settle_s: float = 10.0  # at shutdown, wait this long for background settling, then give up
