"""Keep the worker processes of `serve --workers N` running: start them, replace one that exits
unexpectedly, give up on a crash loop, stop them all when asked.

A worker is a fresh interpreter started by the `launch` function proxy/workers.py passes in (fork and
exec, through asyncio): a replacement inherits nothing of the parent's running event loop, admin listener
or connections, and starts exactly as the first one did. Worker i keeps its index and its private admin
socket across replacements; its generation counts the processes (admin/fanmetrics.py keeps a replaced
worker's counts by it). Implements admin/peers.Roster.

A worker that exits while nobody asked is logged at ERROR with its exit code, counted
(strangler_workers_restarts_total) and started again, at once the first time and then after BACKOFF_S.
A sixth restart of one index within RESTART_WINDOW_S (MAX_RESTARTS + 1) is a crash loop: every worker
is stopped and the parent exits 1, so a broken deploy still fails loudly. At start-up, a worker that
exits before it listens stops everything at once: nothing has worked yet, so nothing is to be kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from proxy.metrics import WorkersMetrics

__all__ = ["BACKOFF_S", "BOOT_TIMEOUT_S", "MAX_RESTARTS", "RESTART_WINDOW_S", "Launch", "Supervisor"]

MAX_RESTARTS = 5  # restarts of one index allowed within RESTART_WINDOW_S; one more is a crash loop
RESTART_WINDOW_S = 60.0
BACKOFF_S = (0.0, 0.25, 0.5, 1.0, 2.0)  # before the 1st, 2nd, ... restart of one index within the window
BOOT_TIMEOUT_S = 60.0  # for a worker to listen on its admin socket at start-up

Launch = Callable[[int, str], Awaitable[asyncio.subprocess.Process]]  # (index, admin socket) -> process
_log = structlog.get_logger("proxy.workers")


@dataclass
class _Worker:
    index: int
    socket: str
    process: asyncio.subprocess.Process | None = None
    generation: int = 0
    started_at: float = 0.0  # unix time
    restarts: int = 0
    recent: deque[float] = field(default_factory=deque)  # clock() of its restarts within the window


class Supervisor:
    def __init__(
        self, sockets: Sequence[str], launch: Launch, metrics: WorkersMetrics, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._workers = [_Worker(index, path) for index, path in enumerate(sockets)]
        self._launch = launch
        self._metrics = metrics
        self._clock = clock
        self._stopped = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self._booted = False
        self._drain_failed = False
        self.stopping = False
        self.failure: str | None = None  # why the supervisor gave up

    def sockets(self) -> list[str]:
        return [worker.socket for worker in self._workers]

    def generation(self, index: int) -> int:
        return self._workers[index].generation

    def describe(self) -> list[dict[str, Any]]:
        return [_describe(worker, self.stopping) for worker in self._workers]

    async def start(self) -> bool:
        """Start every worker; True once each listens on its admin socket, False when one exited or did
        not listen within BOOT_TIMEOUT_S (the supervisor then stops them all), or a stop came first."""
        try:
            for worker in self._workers:
                await self._spawn(worker)
                self._watchers.append(asyncio.create_task(self._watch(worker)))
        except OSError as exc:
            self.give_up("a worker could not be started", error=str(exc))
            return False
        listening = await asyncio.gather(*(self._listening(worker) for worker in self._workers))
        self._booted = all(listening) and not self.stopping
        return self._booted

    def stop(self) -> None:
        """SIGTERM to every worker (each drains); wait() returns once all have exited."""
        if self.stopping:
            return
        self.stopping = True
        self._stopped.set()
        self.signal_all(signal.SIGTERM)

    def signal_all(self, sig: signal.Signals) -> None:
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    async def wait(self) -> int:
        """Until stop() or giving up, and every worker has exited: the parent's exit code."""
        await self._stopped.wait()
        await asyncio.gather(*self._watchers)
        return 1 if self.failure is not None or self._drain_failed else 0

    async def _spawn(self, worker: _Worker) -> None:
        worker.generation += 1  # first: an answer from the new process must never pass for the old one's
        worker.process = await self._launch(worker.index, worker.socket)
        worker.started_at = time.time()
        self._metrics.workers.inc()

    async def _listening(self, worker: _Worker) -> bool:
        deadline = self._clock() + BOOT_TIMEOUT_S
        while not self.stopping:
            assert worker.process is not None
            if worker.process.returncode is not None:
                return False  # its watcher gives up
            try:
                _, writer = await asyncio.open_unix_connection(worker.socket)
            except OSError:
                if self._clock() > deadline:
                    self.give_up("a worker did not listen in time", worker=worker.index,
                                 timeout_s=BOOT_TIMEOUT_S)  # fmt: skip
                    return False
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return True
        return False

    async def _watch(self, worker: _Worker) -> None:
        while True:
            assert worker.process is not None
            pid, code = worker.process.pid, await worker.process.wait()
            self._metrics.workers.dec()
            if self.stopping:
                if code not in (0, -signal.SIGTERM):  # SIGTERM before its handler was set: stopped too
                    self._drain_failed = True
                    _log.error("proxy_worker_exited", worker=worker.index, pid=pid, code=code, stopping=True)
                return
            _log.error("proxy_worker_exited", worker=worker.index, pid=pid, code=code,
                       signal=_signal_name(code))  # fmt: skip
            if not self._booted:
                self.give_up("a worker exited at start-up", worker=worker.index, code=code)
                return
            delay = self._restart_delay(worker)
            if delay is None:
                self.give_up("crash loop", worker=worker.index, code=code, restarts=MAX_RESTARTS,
                              window_s=RESTART_WINDOW_S)  # fmt: skip
                return
            await asyncio.sleep(delay)
            if self._stopped.is_set():  # while it slept
                return
            if not await self._replace(worker):
                return

    async def _replace(self, worker: _Worker) -> bool:
        try:
            await self._spawn(worker)
        except OSError as exc:
            self.give_up("a worker could not be started", worker=worker.index, error=str(exc))
            return False
        worker.restarts += 1
        self._metrics.restarts.inc()
        assert worker.process is not None
        _log.info("proxy_worker_replaced", worker=worker.index, pid=worker.process.pid,
                  restarts=worker.restarts)  # fmt: skip
        if self.stopping:  # the stop came while it started: it was not among those signalled
            worker.process.terminate()
        return True

    def _restart_delay(self, worker: _Worker) -> float | None:
        """How long to wait before restarting `worker`, or None: a crash loop."""
        now, recent = self._clock(), worker.recent
        while recent and now - recent[0] > RESTART_WINDOW_S:
            recent.popleft()
        if len(recent) >= MAX_RESTARTS:
            return None
        delay = BACKOFF_S[min(len(recent), len(BACKOFF_S) - 1)]
        recent.append(now)
        return delay

    def give_up(self, reason: str, **fields: Any) -> None:
        """Log why at ERROR, stop every worker; wait() then returns 1."""
        if self.failure is None:
            self.failure = reason
            event = "proxy_workers_crash_loop" if reason == "crash loop" else "proxy_workers_failed"
            _log.error(event, reason=reason, **fields, detail="stopping every worker; exit code 1")
        self.stop()


def _signal_name(code: int) -> str | None:
    try:
        return signal.Signals(-code).name if code < 0 else None
    except ValueError:
        return None


def _describe(worker: _Worker, stopping: bool) -> dict[str, Any]:
    process = worker.process
    running = process is not None and process.returncode is None
    return {
        "worker": worker.index,
        "pid": process.pid if process is not None else None,
        "state": "running" if running else ("stopped" if stopping else "restarting"),
        "generation": worker.generation,
        "restarts": worker.restarts,
        "started_at": datetime.fromtimestamp(worker.started_at, tz=UTC).isoformat(timespec="seconds"),
        "admin_socket": worker.socket,
    }
