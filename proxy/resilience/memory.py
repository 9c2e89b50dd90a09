"""Byte budgets: one shared Budget per kind of holding (the process's memory for request bodies and
copies, or its spool space), and Hold, one request's share of it, given back whole when the request ends.

Pure: no I/O. A Budget's `limit` follows reloads (`limits.memory_budget_bytes`, `spool_budget_bytes`); a
lower limit refuses new holds until enough is given back, it never takes back what is held.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Budget", "Hold"]


class Budget:
    """A byte budget shared by every request of the process; `limit` follows reloads."""

    def __init__(self, limit: int, *, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.in_use = 0
        self._on_change = on_change

    def take(self, size: int) -> bool:
        if self.in_use + size > self.limit:
            return False
        self.in_use += size
        if self._on_change is not None:
            self._on_change(self.in_use)
        return True

    def give(self, size: int) -> None:
        self.in_use = max(0, self.in_use - size)
        if self._on_change is not None:
            self._on_change(self.in_use)


class Hold:
    """One request's share of a budget: grows as bytes are kept, released whole by close()."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.size = 0

    def grow(self, size: int) -> bool:
        if size <= 0:
            return True
        if not self.budget.take(size):
            return False
        self.size += size
        return True

    def close(self) -> None:
        if self.size:
            self.budget.give(self.size)
            self.size = 0
