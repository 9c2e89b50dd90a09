"""Admission control: at most `max_concurrency` generations at once, a bounded queue behind them.

A request first takes a ticket (refused at once with Overloaded when running + waiting is full), then
waits its turn for a slot. The ticket costs nothing to hold, so a replayed idempotent request can
leave without ever waiting for a generation slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from imageservice.domain.errors import Overloaded
from imageservice.metrics import ServiceMetrics

__all__ = ["Limiter", "Ticket"]


class Limiter:
    def __init__(
        self, *, max_concurrency: int, max_queue: int, retry_after_s: int, metrics: ServiceMetrics
    ) -> None:
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        self._slots = asyncio.Semaphore(max_concurrency)
        self._capacity = max_concurrency + max_queue
        self._admitted = 0
        self._retry_after_s = retry_after_s
        self._metrics = metrics

    @property
    def admitted(self) -> int:
        return self._admitted

    @asynccontextmanager
    async def ticket(self) -> AsyncIterator[Ticket]:
        if self._admitted >= self._capacity:
            self._metrics.rejected.labels(reason="overloaded").inc()
            raise Overloaded(
                "too many generations in progress; retry later", retry_after_s=self._retry_after_s
            )
        self._admitted += 1
        try:
            yield Ticket(self)
        finally:
            self._admitted -= 1


class Ticket:
    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        limiter = self._limiter
        async with limiter._slots:
            limiter._metrics.in_flight.inc()
            try:
                yield
            finally:
                limiter._metrics.in_flight.dec()
