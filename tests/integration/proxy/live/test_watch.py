"""The watcher reads routes.yaml only when a stat says it may have changed, while a change settles, and at
each backstop; renames, symlink swaps and edits the stat cannot see still go live.

Each test runs the real watch() on a real file and store with a scripted clock and stat: check i happens
at steps[i].at, after steps[i].then was done to the file, and sees steps[i].signature (the real stat of
the file when None). The reads are counted by the reader; no wall-clock time is measured.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from proxy.config import load_config
from proxy.config.settle import Seen
from proxy.live.filestat import signature
from proxy.live.gate import Signature
from proxy.live.reload import ConfigStore
from proxy.live.watch import look, watch
from proxy.metrics import ProxyMetrics
from tests.integration.proxy.conftest import WAIT_S

SIG: Signature = (2049, 100, 1234, 1_700_000_000_000_000_000, 1_700_000_000_000_000_000)
EXTRA_CHECKS = 5  # after the last step: more checks of the same file at the same time, which read nothing


def moved(field: int, by: int = 1) -> Signature:
    """SIG with one field (0: st_dev ... 4: st_ctime_ns) moved on."""
    values = list(SIG)
    values[field] += by
    return (values[0], values[1], values[2], values[3], values[4])


def routes(edit: int) -> str:
    return (
        f"# edit {edit}\n"
        "version: 1\n"
        "upstreams:\n"
        "  legacy: {url: 'http://127.0.0.1:9'}\n"
        "default_upstream: legacy\n"
    )


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Step:
    at: float
    signature: Signature | None = None  # None: the real stat of the file
    then: Callable[[], object] | None = None  # done to the file before the check


class Script:
    """The watcher's clock, stat and reader, driven by the steps; `reads`: the times of the reads."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.index = 0
        self.checks = 0
        self.reads: list[float] = []
        self.done = asyncio.Event()

    def clock(self) -> float:
        return self.steps[max(self.index - 1, 0)].at

    def stat(self, path: str) -> Signature:
        self.checks += 1
        if self.index < len(self.steps):
            step = self.steps[self.index]
            self.index += 1
            if step.then is not None:
                step.then()
        elif self.checks >= len(self.steps) + EXTRA_CHECKS:
            self.done.set()
        given = self.steps[self.index - 1].signature
        return signature(path) if given is None else given

    def reader(self, path: str) -> Seen:
        self.reads.append(self.clock())
        return look(path)


@dataclass
class Watched:
    path: Path
    store: ConfigStore
    metrics: ProxyMetrics

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def event(self, event: str) -> float:
        return self.sample("strangler_config_watch_events_total", event=event)

    def write(self, text: str) -> Callable[[], object]:
        return lambda: self.path.write_text(text, encoding="utf-8")


def watched(path: Path) -> Watched:
    metrics = ProxyMetrics(CollectorRegistry())
    return Watched(path, ConfigStore(load_config(path), metrics=metrics), metrics)


@pytest.fixture
def scene(tmp_path: Path) -> Watched:
    path = tmp_path / "routes.yaml"
    path.write_text(routes(0), encoding="utf-8")
    return watched(path)


async def run(scene: Watched, script: Script, **options: Any) -> None:
    options.setdefault("settle_s", 0.0)
    task = asyncio.ensure_future(watch(
        scene.store, interval_s=0, backstop_s=30.0, metrics=scene.metrics, clock=script.clock,
        reader=script.reader, stat=script.stat, stat_on_loop=True, **options,
    ))  # fmt: skip
    try:
        await asyncio.wait_for(script.done.wait(), WAIT_S)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_an_unchanged_file_is_read_at_the_first_check_then_only_at_each_backstop(
    scene: Watched,
) -> None:
    script = Script([Step(at=float(t), signature=SIG) for t in range(0, 95)])  # a check a second
    await run(scene, script)
    assert script.reads == [0.0, 30.0, 60.0, 90.0]
    assert scene.store.current.loaded.sha256 == sha(routes(0))


@pytest.mark.parametrize("field", ["st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns"])
async def test_a_change_of_any_field_of_the_stat_makes_the_next_check_read(
    scene: Watched, field: str
) -> None:
    other = moved(["st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns"].index(field))
    steps = [Step(0.0, SIG), Step(1.0, SIG), Step(2.0, other, scene.write(routes(1))), Step(3.0, other)]
    script = Script(steps)
    await run(scene, script)
    assert script.reads == [0.0, 2.0]
    assert scene.store.current.loaded.sha256 == sha(routes(1))
    assert scene.event("settled") == 1


async def test_a_file_renamed_into_place_is_read_at_the_next_check_and_goes_live_at_once(
    scene: Watched,
) -> None:
    staged = scene.path.with_name("routes.yaml.new")
    staged.write_text(routes(1), encoding="utf-8")
    os.utime(staged, (1_000_000_000, 1_000_000_000))  # written well before the rename: ctime > mtime
    steps = [Step(0.0), Step(1.0), Step(2.0, then=lambda: os.replace(staged, scene.path)), Step(3.0)]
    script = Script(steps)
    await run(scene, script, settle_s=60.0, first=look(str(scene.path)))  # the real stat of the real file
    assert script.reads == [0.0, 2.0]
    assert scene.store.current.loaded.sha256 == sha(routes(1))
    assert (scene.event("renamed"), scene.event("settled")) == (1, 0)


async def test_a_configmap_symlink_swap_is_read_at_the_next_check_and_goes_live_at_once(
    tmp_path: Path,
) -> None:
    # routes.yaml -> ..data/routes.yaml, ..data -> ..v1; an update re-points ..data atomically
    volume = tmp_path / "volume"
    for version, edit in (("..v1", 0), ("..v2", 1)):
        (volume / version).mkdir(parents=True)
        (volume / version / "routes.yaml").write_text(routes(edit), encoding="utf-8")
    (volume / "..data").symlink_to("..v1")
    (volume / "routes.yaml").symlink_to("..data/routes.yaml")
    scene = watched(volume / "routes.yaml")

    def swap() -> None:
        (volume / "..data_tmp").symlink_to("..v2")
        os.replace(volume / "..data_tmp", volume / "..data")

    script = Script([Step(0.0), Step(1.0), Step(2.0, then=swap), Step(3.0)])
    await run(scene, script, settle_s=60.0, first=look(str(scene.path)))
    assert script.reads == [0.0, 2.0]
    assert scene.store.current.loaded.sha256 == sha(routes(1))
    assert scene.event("renamed") == 1


async def test_an_edit_the_stat_cannot_see_is_read_and_applied_at_the_backstop(scene: Watched) -> None:
    # A same-size rewrite within one tick of a coarse timestamp: the stat says the same before and after.
    steps = [Step(float(t), SIG, scene.write(routes(1)) if t == 5 else None) for t in range(0, 35)]
    script = Script(steps)
    with capture_logs() as logs:
        await run(scene, script)
    assert script.reads == [0.0, 30.0]
    assert scene.store.current.loaded.sha256 == sha(routes(1))
    [missed] = [line for line in logs if line["event"] == "config_change_missed_by_stat"]
    assert missed["sha256"] == sha(routes(1))


async def test_a_change_is_read_at_every_check_while_it_settles_and_not_after(scene: Watched) -> None:
    edited = moved(2)  # the size
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    steps = [Step(t, SIG if t < 1.0 else edited, scene.write(routes(1)) if t == 1.0 else None) for t in times]
    script = Script(steps)
    await run(scene, script, settle_s=2.0)
    assert script.reads == [0.0, 1.0, 1.5, 2.0, 2.5, 3.0]  # seen at 1.0, settled (and applied) at 3.0
    assert scene.store.current.loaded.sha256 == sha(routes(1))
    assert scene.event("settled") == 1


async def test_an_invalid_edit_is_read_and_tried_once_and_the_last_good_config_keeps_serving(
    scene: Watched,
) -> None:
    steps = [Step(0.0), Step(1.0, then=scene.write("version: 1\nbogus: true\n")), Step(2.0), Step(3.0)]
    script = Script(steps)
    with capture_logs() as logs:
        await run(scene, script)
    assert script.reads == [0.0, 1.0]
    assert [line["event"] for line in logs].count("config_reload_failed") == 1
    assert scene.store.current.loaded.sha256 == sha(routes(0))
    assert scene.sample("strangler_config_reloads_total", result="failure") == 1


async def test_a_file_that_disappears_is_said_once_without_reading_and_is_read_when_it_comes_back(
    scene: Watched,
) -> None:
    steps = [Step(0.0), Step(1.0, then=scene.path.unlink), Step(2.0), Step(3.0),
             Step(4.0, then=scene.write(routes(1))), Step(5.0)]  # fmt: skip
    script = Script(steps)
    with capture_logs() as logs:
        await run(scene, script)
    assert script.reads == [0.0, 4.0]
    assert [line["event"] for line in logs].count("config_file_unreadable") == 1
    assert scene.event("unreadable") == 1
    assert scene.store.current.loaded.sha256 == sha(routes(1))


async def test_a_read_that_failed_is_tried_again_at_the_next_check(scene: Watched) -> None:
    failures = [OSError(24, "Too many open files")]
    script = Script([Step(float(t), SIG) for t in range(4)])

    def reader(path: str) -> Seen:
        if failures:
            script.reads.append(script.clock())
            raise failures.pop()
        return Script.reader(script, path)

    script.reader = reader  # type: ignore[method-assign]
    await run(scene, script)
    assert script.reads == [0.0, 1.0]  # the stat did not move; the failed read is not taken for a good one
    assert scene.event("fd_shortage") == 1
