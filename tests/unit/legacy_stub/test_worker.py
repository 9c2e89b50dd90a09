from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from legacy_stub.metrics import LegacyMetrics
from legacy_stub.worker import ImageWorker, WorkerStopped


class RecordingPainter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, prompt: str, *, width: int, height: int, index: int) -> bytes:
        self.calls.append((prompt, index))
        await self.hold.wait()
        return f"{prompt}-{index}-{width}x{height}".encode()


def worker_with(painter: RecordingPainter, max_queue: int = 8) -> ImageWorker:
    return ImageWorker(painter, max_queue=max_queue, metrics=LegacyMetrics(CollectorRegistry()))


async def test_a_generation_returns_n_images_painted_in_index_order() -> None:
    painter = RecordingPainter()
    worker = worker_with(painter)
    worker.start()
    try:
        pngs = await worker.generate("p", width=2, height=3, n=3)
    finally:
        await worker.stop()

    assert pngs == [b"p-0-2x3", b"p-1-2x3", b"p-2-2x3"]
    assert painter.calls == [("p", 0), ("p", 1), ("p", 2)]


async def test_a_worker_that_is_not_running_refuses_work() -> None:
    with pytest.raises(WorkerStopped):
        await worker_with(RecordingPainter()).generate("p", width=1, height=1, n=1)


async def test_stopping_the_worker_fails_the_running_and_the_queued_generations() -> None:
    painter = RecordingPainter()
    painter.hold.clear()
    worker = worker_with(painter)
    worker.start()
    running = asyncio.create_task(worker.generate("running", width=1, height=1, n=1))
    queued = asyncio.create_task(worker.generate("queued", width=1, height=1, n=1))
    for _ in range(100):
        if painter.calls:
            break
        await asyncio.sleep(0)

    await worker.stop()

    for task in (running, queued):
        with pytest.raises(WorkerStopped):
            await task
    assert painter.calls == [("running", 0)]


async def test_a_caller_that_gives_up_is_skipped_by_the_worker() -> None:
    painter = RecordingPainter()
    painter.hold.clear()
    worker = worker_with(painter)
    worker.start()
    try:
        first = asyncio.create_task(worker.generate("first", width=1, height=1, n=1))
        abandoned = asyncio.create_task(worker.generate("abandoned", width=1, height=1, n=1))
        for _ in range(100):
            if painter.calls:
                break
            await asyncio.sleep(0)
        abandoned.cancel()
        painter.hold.set()
        await first
        assert await worker.generate("after", width=1, height=1, n=1) == [b"after-0-1x1"]
    finally:
        await worker.stop()

    assert [prompt for prompt, _ in painter.calls] == ["first", "after"]
