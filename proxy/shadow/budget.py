"""The shadow cost budget: a token bucket per route (`shadow.max_per_minute`), per replica.

Owns TokenBucket. Pure: the caller passes the clock. A full bucket holds `per_minute` tokens and
refills at per_minute / 60 a second, so a burst sends at most `per_minute` copies and a long run
averages at most `per_minute` a minute; a copy that finds the bucket empty is skipped (counted by the
caller as `skipped_budget`), never queued.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    __slots__ = ("_at", "_tokens", "capacity", "rate")

    def __init__(self, per_minute: int, *, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self._tokens = self.capacity
        self._at = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def tokens(self) -> float:
        return self._tokens
