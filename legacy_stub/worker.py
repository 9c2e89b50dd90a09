"""The monolith's single image worker: one asyncio.Queue, one consumer task, one generation at a time.

Owns queueing, ordering (first in, first painted) and the queue bound; does not own what is painted
(the Painter) nor what is kept (the Gallery).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import structlog

from legacy_stub.metrics import LegacyMetrics
from legacy_stub.painter import Painter

__all__ = ["ImageWorker", "WorkerOverloaded", "WorkerStopped"]

_log = structlog.get_logger("legacy.worker")


class WorkerOverloaded(RuntimeError):
    """The queue is full: the caller should answer 503 and let the client retry later."""


class WorkerStopped(RuntimeError):
    """The worker is not running (not started yet, or shutting down)."""


@dataclass(slots=True)
class _Job:
    prompt: str
    width: int
    height: int
    n: int
    future: asyncio.Future[list[bytes]]
    request_id: str | None = None
    queued_at: float = field(default_factory=time.perf_counter)


class ImageWorker:
    def __init__(self, painter: Painter, *, max_queue: int, metrics: LegacyMetrics) -> None:
        self._painter = painter
        self._max_queue = max_queue
        self._metrics = metrics
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self._queue = asyncio.Queue(maxsize=self._max_queue)
        self._task = asyncio.create_task(self._run(self._queue), name="legacy-image-worker")

    async def stop(self) -> None:
        """Stop the worker; whoever still waits in the queue gets WorkerStopped."""
        task, queue = self._task, self._queue
        self._task = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while queue is not None and not queue.empty():
            job = queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(WorkerStopped("the image worker is shutting down"))
        self._metrics.queue_depth.set(0)
        self._metrics.in_progress.set(0)

    async def generate(self, prompt: str, *, width: int, height: int, n: int) -> list[bytes]:
        """Queue a generation and wait for its n PNGs; painted strictly after everything queued before."""
        if not self.running or self._queue is None:
            raise WorkerStopped("the image worker is not running")
        job = _Job(
            prompt,
            width,
            height,
            n,
            asyncio.get_running_loop().create_future(),
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
        )
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise WorkerOverloaded(f"{self._max_queue} generations are already waiting") from None
        self._metrics.queue_depth.set(self._queue.qsize())
        # If our caller is cancelled the future is cancelled too, and the worker skips the job.
        return await job.future

    async def _run(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            self._metrics.queue_depth.set(queue.qsize())
            if job.future.done():
                continue
            self._metrics.in_progress.set(1)
            # The worker task has its own context: bind the id of the request it is painting for.
            structlog.contextvars.bind_contextvars(request_id=job.request_id)
            try:
                pngs = await self._paint(job)
            except asyncio.CancelledError:
                if not job.future.done():
                    job.future.set_exception(WorkerStopped("the image worker is shutting down"))
                raise
            except Exception as exc:
                _log.exception("generation_failed", n=job.n, width=job.width, height=job.height)
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                seconds = time.perf_counter() - job.queued_at
                self._metrics.generation_seconds.observe(seconds)
                _log.info("generation_painted", n=job.n, width=job.width, height=job.height, seconds=seconds)
                if not job.future.done():
                    job.future.set_result(pngs)
            finally:
                self._metrics.in_progress.set(0)
                structlog.contextvars.unbind_contextvars("request_id")

    async def _paint(self, job: _Job) -> list[bytes]:
        pngs: list[bytes] = []
        for index in range(job.n):
            if job.future.done():  # the caller gave up; stop spending the worker on it
                break
            pngs.append(await self._painter(job.prompt, width=job.width, height=job.height, index=index))
            self._metrics.images.inc()
        return pngs
