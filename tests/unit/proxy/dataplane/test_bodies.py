"""Request buffering and the budgets: memory first, then the spool, never past either; all given back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import StreamReader

from proxy.dataplane.bodies import BudgetExhausted, read_buffered
from proxy.dataplane.errors import BodyTooLarge
from proxy.resilience.memory import Budget, Hold


class _Protocol:
    """What aiohttp's StreamReader asks of its protocol (flow control), and nothing more."""

    _reading_paused = False

    def pause_reading(self, **_: object) -> None: ...
    def resume_reading(self, **_: object) -> None: ...


def stream(*chunks: bytes) -> StreamReader:
    reader = StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


async def read(*chunks: bytes, declared: int | None = None, **limits: Any) -> Any:
    options = {"max_body_bytes": 1000, "in_memory": 100, "memory": Budget(500), "spool": Budget(5000)}
    options.update(limits)
    return await read_buffered(stream(*chunks), declared=declared, **options)


async def everything(body: Any) -> bytes:
    return b"".join([chunk async for chunk in body.chunks()])


async def test_a_small_body_stays_in_memory_and_its_budget_comes_back() -> None:
    memory = Budget(500)
    body = await read(b"abc", b"def", memory=memory)
    assert (body.data(), body.spooled, memory.in_use) == (b"abcdef", False, 6)
    body.close()
    assert memory.in_use == 0


async def test_a_large_body_is_spooled_and_can_be_read_twice() -> None:
    memory, spool = Budget(500), Budget(5000)
    body = await read(b"x" * 60, b"y" * 60, memory=memory, spool=spool)  # over in_memory=100
    assert body.spooled
    assert body.data() is None
    assert (memory.in_use, spool.in_use) == (0, 120)
    assert await everything(body) == b"x" * 60 + b"y" * 60
    assert await everything(body) == b"x" * 60 + b"y" * 60  # a fallback replay sends it again
    body.close()
    assert spool.in_use == 0


async def test_a_declared_large_body_goes_straight_to_the_spool() -> None:
    memory = Budget(500)
    body = await read(b"z" * 300, declared=300, memory=memory)
    assert body.spooled
    assert memory.in_use == 0
    body.close()


async def test_when_memory_is_spent_the_body_is_spooled_instead() -> None:
    memory = Budget(500)
    assert memory.take(498)
    body = await read(b"abcd", memory=memory)
    assert body.spooled
    assert body.memory_refused
    assert memory.in_use == 498
    assert await everything(body) == b"abcd"
    body.close()


async def test_when_neither_budget_can_hold_it_it_is_refused_and_nothing_stays_held() -> None:
    memory, spool = Budget(500), Budget(100)
    with pytest.raises(BudgetExhausted):
        await read(b"q" * 150, declared=150, memory=memory, spool=spool)
    with pytest.raises(BudgetExhausted):
        await read(b"q" * 80, b"q" * 80, memory=memory, spool=spool)
    assert (memory.in_use, spool.in_use) == (0, 0)


async def test_too_large_is_refused_by_the_declared_length_or_as_it_arrives() -> None:
    memory, spool = Budget(5000), Budget(5000)
    with pytest.raises(BodyTooLarge):
        await read(b"", declared=1001, memory=memory, spool=spool)
    with pytest.raises(BodyTooLarge):
        await read(b"a" * 600, b"a" * 600, memory=memory, spool=spool)
    assert (memory.in_use, spool.in_use) == (0, 0)


def test_a_hold_grows_within_its_budget_and_gives_back_everything_once() -> None:
    budget = Budget(10)
    first, second = Hold(budget), Hold(budget)
    assert first.grow(6)
    assert not second.grow(5)
    assert second.grow(4)
    first.close()
    first.close()
    assert budget.in_use == 4
    second.close()
    assert budget.in_use == 0
