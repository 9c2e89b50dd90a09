"""An upstream's slots: a cap on requests in flight, a short first-come queue, resizable."""

from __future__ import annotations

import asyncio

from proxy.resilience.slots import Slots


async def test_beyond_the_cap_a_request_waits_and_is_refused_when_no_slot_frees() -> None:
    slots = Slots(2)
    assert await slots.acquire(0)
    assert await slots.acquire(0)
    assert not await slots.acquire(0)
    assert not await slots.acquire(0.01)
    assert slots.busy == 2


async def test_a_released_slot_goes_to_the_longest_waiting_request() -> None:
    slots = Slots(1)
    assert await slots.acquire(0)
    order: list[str] = []

    async def wait(name: str) -> None:
        if await slots.acquire(5):
            order.append(name)

    first = asyncio.create_task(wait("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    slots.release()
    await first
    slots.release()
    await second
    assert order == ["first", "second"]
    assert slots.busy == 1


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    slots = Slots(1)
    assert await slots.acquire(0)
    waiter = asyncio.create_task(slots.acquire(5))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    slots.release()
    assert slots.busy == 0
    assert await slots.acquire(0)


async def test_raising_the_cap_lets_waiters_in_and_lowering_it_admits_no_one_new() -> None:
    slots = Slots(1)
    assert await slots.acquire(0)
    waiter = asyncio.create_task(slots.acquire(5))
    await asyncio.sleep(0)
    slots.resize(2)
    assert await waiter
    slots.resize(1)
    assert not await slots.acquire(0)
    slots.release()
    slots.release()
    assert await slots.acquire(0)
