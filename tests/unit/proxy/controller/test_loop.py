"""The controller's loop on a real routes file: starting, stepping on evidence, aborting, respecting an
operator's edit, never writing an invalid file, outliving Prometheus's outages, resuming after a restart."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.config import parse_config
from proxy.controller.loop import ControllerError
from proxy.controller.target import FileTarget
from tests.unit.proxy.controller.rig import FAILING, HEALTHY, QUIET, ROUTES, Rig, analysed, changed_lines


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [line for line in logs if line["event"] == name]


async def test_a_route_at_zero_starts_at_its_first_step_and_the_file_changes_only_there(rig: Rig) -> None:
    controller = rig.controller()
    with capture_logs() as logs:
        await controller.start()

    assert changed_lines(ROUTES, rig.path.read_text()) == [
        "-      percent: 0            # the controller moves this",
        "+      percent: 10           # the controller moves this",
    ]
    (step,) = events(logs, "rollout_step")
    assert (step["from_percent"], step["to_percent"], step["by"]) == (None, 10, "controller")
    saved = json.loads(rig.path.with_name("routes.yaml.rollout.json").read_text())
    assert saved["routes"]["images"]["last_written_percent"] == 10


async def test_passed_analyses_step_the_route_up_to_the_last_step_and_it_succeeds(rig: Rig) -> None:
    controller = rig.controller()
    await controller.start()
    with capture_logs() as logs:
        await analysed(controller, rig, HEALTHY)
        assert rig.percent() == 50
        await analysed(controller, rig, HEALTHY)

    assert rig.percent() == 100
    assert controller.rollouts.entries["images"].state.phase == "succeeded"
    analysis = events(logs, "rollout_analysis")[0]
    assert analysis["result"] == "passed"
    assert analysis["primary"] == {"requests": 300, "errors": 1}
    assert analysis["candidate"] == {"requests": 60, "errors": 0}
    (check,) = analysis["checks"]  # type: ignore[misc]
    assert check["name"] == "error_rate"
    assert check["p_value"] > 0.5  # 0 of 60 against 1 of 300: no sign of a worse candidate
    assert [line["to_percent"] for line in events(logs, "rollout_step")] == [50, 100]
    assert events(logs, "rollout_succeeded")
    sample = controller.metrics.registry.get_sample_value
    assert sample("strangler_rollout_analyses_total", {"route": "images", "result": "passed"}) == 2
    assert sample("strangler_rollout_phase", {"route": "images", "phase": "succeeded"}) == 1
    assert sample("strangler_rollout_phase", {"route": "images", "phase": "progressing"}) == 0


async def test_failed_analyses_in_a_row_abort_to_zero_with_the_evidence_in_the_log_line(rig: Rig) -> None:
    controller = rig.controller()
    await controller.start()
    with capture_logs() as logs:
        await analysed(controller, rig, FAILING)
        assert rig.percent() == 10  # one failure of max_failures 2
        await analysed(controller, rig, FAILING)

    assert rig.percent() == 0
    (aborted,) = events(logs, "rollout_aborted")
    assert aborted["by"] == "controller"
    assert aborted["from_percent"] == 10
    verdict = aborted["verdict"]
    assert verdict["result"] == "failed"  # type: ignore[index]
    (check,) = verdict["checks"]  # type: ignore[index]
    assert check["observed"]["candidate_rate"] == 0.5
    assert check["p_value"] < 0.05


async def test_an_operators_own_percent_pauses_the_rollout_and_is_never_written_over(rig: Rig) -> None:
    controller = rig.controller()
    await controller.start()
    rig.path.write_text(rig.path.read_text().replace("percent: 10 ", "percent: 30 "))
    with capture_logs() as logs:
        await controller.follow()
        await analysed(controller, rig, HEALTHY)
        await controller.follow()

    state = controller.rollouts.entries["images"].state
    assert (state.phase, state.paused_by, state.percent) == ("paused", "operator", 30)
    assert rig.percent() == 30
    (paused,) = events(logs, "rollout_paused")
    assert paused["source"] == "file"
    assert "not the 10 the controller wrote" in str(paused["reason"])
    assert not events(logs, "rollout_analysis")  # hands off: no analysis while an operator holds it


async def test_an_invalid_file_is_never_written_and_the_controller_says_so_once(rig: Rig) -> None:
    controller = rig.controller()
    await controller.start()
    broken = rig.path.read_text().replace("default_upstream: legacy", "default_upstream: nowhere")
    rig.path.write_text(broken)
    with capture_logs() as logs:
        await controller.follow()
        await controller.follow()
        await analysed(controller, rig, HEALTHY)

    assert rig.path.read_text() == broken
    assert len(events(logs, "rollout_target_invalid")) == 1
    (refused,) = events(logs, "rollout_write_refused")
    assert refused["percent"] == 50
    assert any("nowhere" in error for error in refused["errors"])  # type: ignore[attr-defined]
    state = controller.rollouts.entries["images"].state
    assert (state.step_index, state.percent) == (0, 10)  # the step is taken again once the file is fixed
    rig.path.write_text(broken.replace("nowhere", "legacy"))
    await analysed(controller, rig, HEALTHY)
    assert rig.percent() == 50


async def test_prometheus_unreachable_makes_analyses_inconclusive_and_is_said_once_per_outage(
    rig: Rig,
) -> None:
    controller = rig.controller()
    await controller.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    reachable, controller.prometheus.url = controller.prometheus.url, closed
    with capture_logs() as logs:
        await analysed(controller, rig, HEALTHY)
        await analysed(controller, rig, HEALTHY)
        controller.prometheus.url = reachable
        await analysed(controller, rig, HEALTHY)

    (outage,) = events(logs, "prometheus_unavailable")
    assert closed in str(outage["error"])
    assert len(events(logs, "prometheus_available")) == 1
    results = [(line["result"], line["log_level"]) for line in events(logs, "rollout_analysis")]
    assert results == [("inconclusive", "debug"), ("inconclusive", "debug"), ("passed", "info")]
    assert rig.percent() == 50
    registry = controller.metrics.registry
    sample = {"route": "images", "result": "inconclusive"}
    assert registry.get_sample_value("strangler_rollout_analyses_total", sample) == 2


async def test_too_little_traffic_pauses_after_max_inconclusive_in_a_row(rig: Rig) -> None:
    controller = rig.controller()
    await controller.start()
    with capture_logs() as logs:
        for _ in range(3):
            await analysed(controller, rig, QUIET)

    state = controller.rollouts.entries["images"].state
    assert (state.phase, state.paused_by, rig.percent()) == ("paused", "traffic", 10)
    assert events(logs, "rollout_paused")[0]["paused_by"] == "traffic"


async def test_a_restarted_controller_resumes_at_its_step_from_the_saved_state(rig: Rig) -> None:
    first = rig.controller()
    await first.start()
    await analysed(first, rig, HEALTHY)
    assert rig.percent() == 50
    before = rig.path.read_text()

    second = rig.controller()
    with capture_logs() as logs:
        await second.start()

    (loaded,) = events(logs, "rollout_loaded")
    assert (loaded["phase"], loaded["step"], loaded["percent"]) == ("progressing", 1, 50)
    assert rig.path.read_text() == before  # nothing written on the way back
    await analysed(second, rig, HEALTHY)
    assert rig.percent() == 100


class Crash(BaseException):
    """The process dies here (SIGKILL between two system calls)."""


class CrashingTarget(FileTarget):
    async def write(self, text: str, *, expected: str) -> None:
        raise Crash


async def test_a_crash_between_saving_the_state_and_writing_the_file_reads_as_an_operators_edit(
    rig: Rig,
) -> None:
    first = rig.controller()
    await first.start()
    crashing = rig.controller(CrashingTarget(rig.path))
    await crashing.start()
    with pytest.raises(Crash):
        await analysed(crashing, rig, HEALTHY)
    assert rig.percent() == 10  # the state says 50 was written; the file never got it

    restarted = rig.controller()
    await restarted.start()

    state = restarted.rollouts.entries["images"].state
    assert (state.phase, state.paused_by, state.percent) == ("paused", "operator", 10)
    assert rig.percent() == 10


class FullDisk(FileTarget):
    async def write(self, text: str, *, expected: str) -> None:
        raise OSError(28, "No space left on device")


async def test_a_failed_write_changes_nothing_and_puts_the_saved_state_back(rig: Rig) -> None:
    await rig.controller().start()
    controller = rig.controller(FullDisk(rig.path))
    await controller.start()
    saved = rig.path.with_name("routes.yaml.rollout.json")
    before = saved.read_text()

    with capture_logs() as logs:
        await analysed(controller, rig, HEALTHY)

    assert rig.percent() == 10
    assert controller.rollouts.entries["images"].state.percent == 10
    assert json.loads(saved.read_text()) == json.loads(before)
    (failed,) = events(logs, "rollout_write_failed")
    assert "No space left" in str(failed["error"])


class Watching(FileTarget):
    """Notes what the controller shows while the file is being written."""

    def __init__(self, path: object) -> None:
        super().__init__(path)  # type: ignore[arg-type]
        self.shown: list[float] = []
        self.controller: Any = None

    async def write(self, text: str, *, expected: str) -> None:
        self.shown.append(self.controller.rollouts.entries["images"].state.percent)
        await super().write(text, expected=expected)


async def test_the_state_shown_changes_only_once_the_percent_is_in_the_file(rig: Rig) -> None:
    await rig.controller().start()
    target = Watching(rig.path)
    controller = target.controller = rig.controller(target)
    await controller.start()

    await analysed(controller, rig, HEALTHY)

    assert target.shown == [10]  # while 50 was being written, /status still said 10
    assert controller.rollouts.entries["images"].state.percent == 50


class MeddlingTarget(FileTarget):
    """An operator saves the file between the controller's read and its write, once."""

    def __init__(self, path: object, edit: tuple[str, str]) -> None:
        super().__init__(path)  # type: ignore[arg-type]
        self.edit: tuple[str, str] | None = edit

    async def write(self, text: str, *, expected: str) -> None:
        if self.edit is not None:
            self.path.write_text(self.path.read_text().replace(*self.edit))
            self.edit = None
        await super().write(text, expected=expected)


async def test_a_conflict_over_another_line_is_written_again_on_the_operators_text(rig: Rig) -> None:
    await rig.controller().start()
    edit = ("# carved out first", "# carved out first (PR 12)")
    controller = rig.controller(MeddlingTarget(rig.path, edit))
    await controller.start()

    await analysed(controller, rig, HEALTHY)

    assert rig.percent() == 50
    assert "# carved out first (PR 12)" in rig.path.read_text()


async def test_a_conflict_over_the_percent_pauses_and_keeps_the_operators_percent(rig: Rig) -> None:
    await rig.controller().start()
    controller = rig.controller(MeddlingTarget(rig.path, ("percent: 10 ", "percent: 5  ")))
    await controller.start()

    with capture_logs() as logs:
        await analysed(controller, rig, HEALTHY)

    assert rig.percent() == 5
    state = controller.rollouts.entries["images"].state
    assert (state.phase, state.paused_by, state.percent) == ("paused", "operator", 5)
    assert events(logs, "rollout_paused")


async def test_edited_steps_replan_and_a_route_whose_block_is_removed_is_let_go(rig: Rig) -> None:
    controller = rig.controller()
    await controller.start()
    rig.path.write_text(rig.path.read_text().replace("steps: [10, 50, 100]", "steps: [10, 20, 100]"))
    with capture_logs() as logs:
        await controller.follow()
        await analysed(controller, rig, HEALTHY)
    assert events(logs, "rollout_replanned")
    assert rig.percent() == 20

    text = rig.path.read_text()
    rig.path.write_text(text[: text.index("    progressive:")])
    with capture_logs() as logs:
        await controller.follow()

    assert events(logs, "rollout_route_removed")
    assert controller.rollouts.entries == {}
    saved = json.loads(rig.path.with_name("routes.yaml.rollout.json").read_text())
    assert saved["routes"] == {}
    registry = controller.metrics.registry
    assert registry.get_sample_value("strangler_rollout_step", {"route": "images"}) is None


async def test_an_unreadable_state_file_stops_the_start_with_what_to_do(rig: Rig) -> None:
    rig.path.with_name("routes.yaml.rollout.json").write_text('{"version": 9}')

    with pytest.raises(ControllerError, match=r"version must be 1.*move it away"):
        await rig.controller().start()
    assert rig.percent() == 0



async def test_an_unchanged_file_is_parsed_once_however_often_it_is_read_and_again_once_it_changes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import proxy.controller.rollouts as rollouts

    parsed: list[str] = []

    def counted(text: str, **kwargs: Any) -> Any:
        parsed.append(text)
        return parse_config(text, **kwargs)

    controller = rig.controller()
    await controller.start()
    monkeypatch.setattr(rollouts, "parse_config", counted)
    for _ in range(5):  # every refresh reads the file, and looks at it once more per route
        await controller.follow()
    assert parsed == [rig.path.read_text()]

    broken = rig.path.read_text().replace("default_upstream: legacy", "default_upstream: nowhere")
    rig.path.write_text(broken)
    with capture_logs() as logs:
        for _ in range(3):
            await controller.follow()
    assert parsed[1:] == [broken]  # an invalid text too: refused once, from then on as it was
    assert len(events(logs, "rollout_target_invalid")) == 1
