"""Running one compensating action of the saga: retried with backoff, shielded, counted and logged.

What still fails after the last attempt is counted as `result="failed"` and logged: at ERROR as
`compensation_failed` when nothing else will retry it (`imageservice reconcile` cleans up what it
left), at WARNING when the caller hands it to the background (`deferred=True`, see settle.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from imageservice.metrics import ServiceMetrics

__all__ = ["Compensator"]

_log = structlog.get_logger("imageservice.saga")


class Compensator:
    def __init__(self, metrics: ServiceMetrics, *, attempts: int, backoff_s: float) -> None:
        self._metrics = metrics
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s

    async def run(
        self, step: str, action: Callable[[], Awaitable[None]], *, subject: str, deferred: bool = False
    ) -> bool:
        for attempt in range(self._attempts):
            try:
                await asyncio.shield(action())  # a second cancellation must not abandon the undo halfway
            except Exception as exc:
                _log.warning(
                    "compensation_attempt_failed",
                    step=step,
                    subject=subject,
                    attempt=attempt + 1,
                    error=type(exc).__name__,
                )
                if attempt + 1 < self._attempts:
                    await asyncio.sleep(self._backoff_s * 2**attempt)
                continue
            self._metrics.compensations.labels(step=step, result="ok").inc()
            return True
        self._metrics.compensations.labels(step=step, result="failed").inc()
        if deferred:
            _log.warning("compensation_deferred", step=step, subject=subject, hint="retried in background")
        else:
            _log.error("compensation_failed", step=step, subject=subject, hint="run `imageservice reconcile`")
        return False
