"""The supervisor of --workers N with small real processes in place of proxy workers: a worker that dies
is replaced, a crash loop ends everything with exit 1, restarts long apart are not a loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from proxy.metrics import WorkersMetrics
from proxy.supervisor import MAX_RESTARTS, RESTART_WINDOW_S, Launch, Supervisor

# A stand-in worker: "live" listens on its admin socket (argv[1]) until SIGTERM; "die" exits with 3 at once.
CHILD = """
import signal, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
if mode == "die":
    sys.exit(3)
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
"""
BOUND_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def private() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="sup-")  # short: a unix socket path holds 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("proxy.supervisor.BACKOFF_S", (0.0,))


def launcher(modes: Iterator[str], clock: Clock | None = None, step_s: float = 0.0) -> Launch:
    """Starts the stand-in in the next mode; moves `clock` on by `step_s` at each start."""

    async def launch(index: int, path: str) -> asyncio.subprocess.Process:
        if clock is not None:
            clock.now += step_s
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, path, next(modes))

    return launch


async def kill(supervisor: Supervisor, index: int) -> None:
    os.kill(supervisor.describe()[index]["pid"], signal.SIGKILL)


@pytest.fixture
def metrics() -> WorkersMetrics:
    return WorkersMetrics(CollectorRegistry())


def count(metrics: WorkersMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def test_a_worker_that_keeps_dying_is_restarted_five_times_then_everything_stops_with_1(
    private: str, metrics: WorkersMetrics
) -> None:
    modes = iter(["live", "live", *["die"] * (MAX_RESTARTS + 1)])
    supervisor = Supervisor([f"{private}/w0.sock", f"{private}/w1.sock"], launcher(modes), metrics)
    assert await supervisor.start()

    await kill(supervisor, 1)  # its replacements all die at once

    assert await asyncio.wait_for(supervisor.wait(), BOUND_S) == 1
    assert supervisor.failure == "crash loop"
    assert [w["restarts"] for w in supervisor.describe()] == [0, MAX_RESTARTS]
    assert count(metrics, "strangler_workers_restarts_total") == MAX_RESTARTS
    assert count(metrics, "strangler_workers") == 0  # the healthy one was stopped too


async def test_restarts_further_apart_than_the_window_are_never_a_crash_loop(
    private: str, metrics: WorkersMetrics
) -> None:
    clock = Clock()
    modes = iter(["live", *["die"] * (MAX_RESTARTS * 2), "live"])
    supervisor = Supervisor([f"{private}/w0.sock"], launcher(modes, clock, RESTART_WINDOW_S + 1), metrics,
                            clock=clock)  # fmt: skip
    assert await supervisor.start()

    await kill(supervisor, 0)  # then each replacement dies a window after the last, until one lives

    async def the_last_lives() -> None:
        while supervisor.describe()[0]["restarts"] < MAX_RESTARTS * 2 + 1 and supervisor.failure is None:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(the_last_lives(), BOUND_S)
    supervisor.stop()

    assert await asyncio.wait_for(supervisor.wait(), BOUND_S) == 0
    assert supervisor.failure is None
    assert count(metrics, "strangler_workers_restarts_total") == MAX_RESTARTS * 2 + 1


async def test_a_worker_that_exits_before_it_listens_at_start_up_stops_everything_at_once(
    private: str, metrics: WorkersMetrics
) -> None:
    supervisor = Supervisor([f"{private}/w0.sock", f"{private}/w1.sock"], launcher(iter(["live", "die"])),
                            metrics)  # fmt: skip

    assert not await supervisor.start()
    assert await asyncio.wait_for(supervisor.wait(), BOUND_S) == 1
    assert supervisor.failure == "a worker exited at start-up"
    assert count(metrics, "strangler_workers_restarts_total") == 0


async def test_stop_drains_every_worker_and_is_a_clean_exit(private: str, metrics: WorkersMetrics) -> None:
    supervisor = Supervisor([f"{private}/w0.sock", f"{private}/w1.sock"], launcher(iter(["live", "live"])),
                            metrics)  # fmt: skip
    assert await supervisor.start()
    assert count(metrics, "strangler_workers") == 2
    generations = [supervisor.generation(0), supervisor.generation(1)]

    supervisor.stop()

    assert await asyncio.wait_for(supervisor.wait(), BOUND_S) == 0
    assert [w["state"] for w in supervisor.describe()] == ["stopped", "stopped"]
    assert [supervisor.generation(0), supervisor.generation(1)] == generations == [1, 1]
