"""A worker's watch on its parent (server._stop_when_orphaned) where pidfd_open is missing or refused:
the parent is looked up until it changes, then the worker is told to stop. The pidfd path is proven on
real processes (tests/integration/proxy/test_workers.py: the parent is killed)."""

from __future__ import annotations

import asyncio
import os

import pytest

from proxy import server


async def test_without_a_pidfd_the_parent_is_polled_until_it_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(_: int) -> int:
        raise OSError("pidfd_open refused")

    parents = iter([100, 100, 100, 1])  # three looks at the living parent, then init adopted the worker
    looks: list[int] = []

    def getppid() -> int:
        looks.append(1)
        return next(parents)

    monkeypatch.setattr(os, "pidfd_open", refused)
    monkeypatch.setattr(os, "getppid", getppid)
    stop = asyncio.Event()
    await asyncio.wait_for(server._stop_when_orphaned(100, stop, every_s=0), 5)
    assert stop.is_set()
    assert len(looks) == 4


async def test_a_pidfd_for_a_process_that_is_not_the_parent_stops_at_once() -> None:
    # pidfd_open(pid) may open a reused pid: the check after opening sees it is not the parent any more
    child = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        stop = asyncio.Event()
        await asyncio.wait_for(server._stop_when_orphaned(child.pid, stop), 5)
        assert stop.is_set()
    finally:
        child.kill()
        await child.wait()
