"""Test doubles for the stub's integration tests: a painter that the test holds and releases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from legacy_stub.painter import paint_png


class GatedPainter:
    """Paints only when the test opens the gate for that prompt; counts how many paint at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.started: list[str] = []
        self.finished: list[str] = []
        self._gates: dict[str, asyncio.Event] = {}

    def gate(self, prompt: str) -> asyncio.Event:
        return self._gates.setdefault(prompt, asyncio.Event())

    async def __call__(self, prompt: str, *, width: int, height: int, index: int) -> bytes:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.append(prompt)
        try:
            await self.gate(prompt).wait()
        finally:
            self.in_flight -= 1
        self.finished.append(prompt)
        return paint_png(prompt, width=width, height=height, index=index)


class FailingOncePainter:
    """Raises on its first call, paints afterwards."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, prompt: str, *, width: int, height: int, index: int) -> bytes:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the painter broke")
        return paint_png(prompt, width=width, height=height, index=index)


async def wait_until(condition: Callable[[], bool], *, what: str, attempts: int = 500) -> None:
    """Poll a condition a bounded number of times (about 5 s at most); fail naming what never happened."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
