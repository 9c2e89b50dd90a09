"""The rollout state machine: steps, failures, pauses, operators' commands and edits, the time passed in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.progressive import Progressive
from proxy.rollout.analysis import Verdict
from proxy.rollout.state import (
    Refused,
    RolloutState,
    Transition,
    abort,
    after_analysis,
    operator_edited,
    pause,
    promote,
    replan,
    restart,
    resume,
    start,
)

PASSED = Verdict("passed", (), "all 1 checks passed")
FAILED = Verdict("failed", (), "error_rate: worse")
INCONCLUSIVE = Verdict("inconclusive", (), "too little traffic")


def plan(*steps: float | str, **more: Any) -> Progressive:
    body = {"steps": list(steps), "checks": {"error_rate": {"max_increase": 0.01}}, **more}
    return Progressive.model_validate(body)


STEPS = plan(1, 5, "pause", 25, 50, 100)


def judged(state: RolloutState, *verdicts: Verdict, policy: Progressive = STEPS) -> list[Transition]:
    """Feed verdicts one a minute; every transition on the way."""
    moves = []
    for minute, verdict in enumerate(verdicts, start=1):
        moves.append(after_analysis(state, verdict, policy, now=60.0 * minute))
        state = moves[-1].state
    return moves


def test_a_route_at_zero_starts_at_the_first_step_at_once() -> None:
    state, write = start(STEPS, 0, now=10.0)
    assert write == 1
    assert (state.phase, state.step_index, state.percent) == ("progressing", 0, 1)
    assert state.last_written_percent == 1
    assert (state.failures_in_row, state.inconclusive_in_row, state.updated_at) == (0, 0, 10.0)
    assert state.steps == (1, 5, "pause", 25, 50, 100)


def test_a_route_at_a_step_resumes_there_without_writing() -> None:
    state, write = start(STEPS, 25, now=0)
    assert write is None
    assert (state.phase, state.step_index, state.percent) == ("progressing", 3, 25)


def test_a_percent_between_steps_is_kept_and_the_next_pass_goes_to_the_step_above() -> None:
    state, write = start(STEPS, 30, now=0)
    assert (write, state.step_index, state.percent, state.last_written_percent) == (None, 3, 30, 30)
    assert judged(state, PASSED)[0].set_percent == 50


def test_a_percent_below_the_first_step_is_raised_to_it() -> None:
    assert start(STEPS, 0.5, now=0).set_percent == 1


@pytest.mark.parametrize("percent", [100, 75])
def test_a_route_at_or_past_the_last_step_has_succeeded(percent: float) -> None:
    state, write = start(plan(1, 50), percent, now=0)
    assert (state.phase, write, state.percent) == ("succeeded", None, percent)


def test_passed_analyses_walk_the_steps_and_wait_at_a_pause_for_promote() -> None:
    state = start(STEPS, 0, now=0).state
    moves = judged(state, PASSED, PASSED, PASSED, PASSED)
    assert [m.set_percent for m in moves] == [5, None, None, None]
    waiting = moves[-1].state
    assert (waiting.phase, waiting.paused_by, waiting.step_index, waiting.percent) == ("paused", "step", 2, 5)
    assert "waiting for promote" in waiting.reason

    state, write = promote(waiting, STEPS, now=300)
    assert (state.phase, state.percent, write) == ("progressing", 25, 25)
    moves = judged(state, PASSED, PASSED)
    assert [m.set_percent for m in moves] == [50, 100]
    assert moves[-1].state.phase == "succeeded"
    assert moves[-1].state.reason.endswith("100 % is the last step: succeeded")


def test_a_last_step_below_100_succeeds_at_that_percent() -> None:
    state = start(plan(1, 10, 50), 10, now=0).state
    move = judged(state, PASSED, policy=plan(1, 10, 50))[0]
    assert (move.set_percent, move.state.phase) == (50, "succeeded")


def test_max_failures_in_a_row_abort_to_zero() -> None:
    state = start(STEPS, 25, now=0).state
    first, second = judged(state, FAILED, FAILED)
    assert (first.state.phase, first.state.failures_in_row, first.set_percent) == ("progressing", 1, None)
    assert "analysis failed (1 of 2 in a row): error_rate: worse" in first.state.reason
    assert (second.state.phase, second.state.percent, second.set_percent) == ("aborted", 0, 0)
    assert second.state.reason == "aborted: 2 failed analyses in a row: error_rate: worse"
    assert second.state.last_written_percent == 0


def test_a_pass_resets_the_failures_and_an_inconclusive_analysis_neither_resets_nor_adds() -> None:
    state = start(STEPS, 25, now=0).state
    moves = judged(state, FAILED, PASSED, FAILED, INCONCLUSIVE, FAILED)
    assert [m.state.failures_in_row for m in moves[:4]] == [1, 0, 1, 1]
    assert moves[1].set_percent == 50
    assert moves[-1].state.phase == "aborted"


def test_max_inconclusive_in_a_row_pause_for_traffic_and_then_nothing_moves() -> None:
    state = start(STEPS, 25, now=0).state
    moves = judged(state, *[INCONCLUSIVE] * 10, policy=STEPS)
    assert [m.state.phase for m in moves[:9]] == ["progressing"] * 9
    paused = moves[-1].state
    assert (paused.phase, paused.paused_by) == ("paused", "traffic")
    assert paused.reason.startswith("paused: 10 inconclusive analyses in a row (too little traffic)")
    assert judged(paused, FAILED, FAILED, PASSED) == [Transition(paused, None)] * 3

    resumed, write = resume(paused, STEPS, now=1000)
    assert (resumed.phase, resumed.percent, write) == ("progressing", 25, None)
    assert resumed.reason.startswith("resumed: ")


def test_at_a_pause_step_analyses_still_run_and_failures_still_abort() -> None:
    waiting = start(STEPS, 5, now=0).state
    waiting = judged(waiting, PASSED)[0].state
    assert waiting.paused_by == "step"
    moves = judged(waiting, *[INCONCLUSIVE] * 12, FAILED, PASSED, FAILED, FAILED)
    assert all(m.state.paused_by == "step" for m in moves[:14])
    assert moves[13].state.failures_in_row == 0
    assert (moves[-1].state.phase, moves[-1].set_percent) == ("aborted", 0)


def test_an_operator_edit_pauses_and_is_never_overwritten() -> None:
    state = start(STEPS, 0, now=0).state  # the controller wrote 1
    edited = operator_edited(state, 3, now=5)
    assert (edited.phase, edited.paused_by, edited.percent, edited.last_written_percent) == (
        "paused", "operator", 3, 1
    )  # fmt: skip
    assert edited.reason == ("rollout.percent is 3 in the file, not the 1 the controller wrote: paused; "
                             "resume goes on from 3 %")  # fmt: skip
    assert operator_edited(edited, 3, now=6) is edited  # said once
    assert judged(edited, PASSED, FAILED, FAILED) == [Transition(edited, None)] * 3

    resumed, write = resume(edited, STEPS, now=100)
    assert (resumed.phase, resumed.step_index, resumed.percent, resumed.last_written_percent, write) == (
        "progressing", 0, 3, 3, None
    )  # fmt: skip
    assert judged(resumed, PASSED)[0].set_percent == 5


def test_the_controller_s_own_percent_in_the_file_is_no_edit() -> None:
    state = start(STEPS, 0, now=0).state
    assert operator_edited(state, 1, now=5) is state


def test_an_edit_after_an_abort_is_how_an_operator_takes_the_rollout_back() -> None:
    aborted = abort(start(STEPS, 25, now=0).state, "by hand", now=1).state
    with pytest.raises(Refused, match=r"aborted: edit rollout\.percent in the file, or restart"):
        resume(aborted, STEPS, now=2)
    with pytest.raises(Refused, match="aborted"):
        promote(aborted, STEPS, now=2)
    edited = operator_edited(aborted, 5, now=3)
    assert (edited.phase, edited.paused_by) == ("paused", "operator")
    assert resume(edited, STEPS, now=4).state.phase == "progressing"


def test_abort_writes_zero_once_and_restart_begins_again_at_the_first_step() -> None:
    state = start(STEPS, 50, now=0).state
    aborted, write = abort(state, "the dashboards look wrong", now=1)
    assert (aborted.phase, aborted.percent, write) == ("aborted", 0, 0)
    assert aborted.reason == "aborted: the dashboards look wrong"
    assert abort(aborted, "again", now=2) == Transition(aborted, None)

    restarted, write = restart(aborted, STEPS, now=3)
    assert (restarted.phase, restarted.step_index, restarted.percent, write) == ("progressing", 0, 1, 1)
    with pytest.raises(Refused, match="only an aborted rollout restarts"):
        restart(restarted, STEPS, now=4)


def test_an_operator_pause_holds_until_resume() -> None:
    state = start(STEPS, 25, now=0).state
    paused = pause(state, "a launch tonight", now=1).state
    assert (paused.phase, paused.paused_by, paused.reason) == ("paused", "operator", "paused by an operator: "
                                                               "a launch tonight")  # fmt: skip
    assert judged(paused, PASSED) == [Transition(paused, None)]
    with pytest.raises(Refused, match="not paused"):
        resume(state, STEPS, now=2)
    assert resume(paused, STEPS, now=2).state.phase == "progressing"


def test_resume_does_not_pass_a_pause_step_promote_does() -> None:
    waiting = judged(start(STEPS, 5, now=0).state, PASSED)[0].state
    with pytest.raises(Refused, match="step 2 is a pause: promote to go on"):
        resume(waiting, STEPS, now=1)
    held = pause(waiting, "look first", now=2).state
    assert promote(held, STEPS, now=3).set_percent == 25


def test_promote_skips_the_wait_and_past_the_last_step_is_success() -> None:
    state = start(STEPS, 50, now=0).state
    done, write = promote(state, STEPS, now=1)
    assert (done.phase, write) == ("succeeded", 100)
    with pytest.raises(Refused, match="succeeded: there is no step left"):
        promote(done, STEPS, now=2)
    with pytest.raises(Refused, match="succeeded"):
        pause(done, "x", now=2)
    past = operator_edited(start(plan(1, 50), 1, now=0).state, 60, now=1)
    done, write = promote(past, plan(1, 50), now=2)
    assert (done.phase, done.percent, done.last_written_percent, write) == ("succeeded", 60, 60, None)


def test_an_edit_after_success_pauses_and_resume_climbs_again() -> None:
    done = start(STEPS, 100, now=0).state
    edited = operator_edited(done, 50, now=1)
    assert edited.phase == "paused"
    resumed = resume(edited, STEPS, now=2).state
    assert judged(resumed, PASSED)[0].set_percent == 100


def test_new_steps_in_the_file_place_the_rollout_again_at_its_percent() -> None:
    state = start(STEPS, 25, now=0).state
    longer = plan(10, 25, 40, 60, 100)
    moved = replan(state, longer, now=1)
    assert (moved.step_index, moved.percent, moved.steps) == (1, 25, (10, 25, 40, 60, 100))
    assert moved.reason.startswith("the steps changed in the file: ")
    assert replan(moved, longer, now=2) is moved
    assert judged(state, PASSED, policy=longer)[0].set_percent == 40  # after_analysis replans first
    aborted = abort(state, "x", now=1).state
    assert replan(aborted, longer, now=2).phase == "aborted"


verdicts = st.sampled_from([PASSED, FAILED, INCONCLUSIVE])
commands = st.sampled_from(["promote", "pause", "resume", "abort", "restart", "edit"])


@given(
    steps=st.sampled_from([(1, 5, "pause", 25, 50, 100), (10, 100), (1, "pause", 2, "pause", 3), (50,)]),
    first=st.sampled_from([0, 1, 3, 50, 100]),
    events=st.lists(st.one_of(verdicts, commands, st.floats(0, 100).map(lambda p: round(p, 2))), max_size=40),
)
def test_whatever_happens_the_controller_only_writes_steps_or_zero_and_never_over_a_human(
    steps: tuple[Any, ...], first: float, events: list[Any]
) -> None:
    policy = plan(*steps, max_failures=2, max_inconclusive=3)
    state, write = start(policy, first, now=0)
    numbers = {s for s in steps if s != "pause"}
    for now, event in enumerate(events, start=1):
        before = state
        try:
            state, write = _apply(event, state, policy, now)
        except Refused:
            continue
        assert write is None or write in numbers or write == 0
        if before.paused_by == "operator" and event not in ("promote", "resume", "abort"):
            assert write is None  # only an operator's command moves a route an operator has touched
        if write is not None:
            assert state.last_written_percent == write == state.percent
            assert write == 0 or write >= before.percent  # only abort lowers
        assert 0 <= state.percent <= 100
        assert (state.phase == "paused") == (state.paused_by is not None)


def _apply(event: Any, state: RolloutState, policy: Progressive, now: float) -> Transition:
    if isinstance(event, Verdict):
        return after_analysis(state, event, policy, now=now)
    if isinstance(event, float):
        return Transition(operator_edited(state, event, now=now), None)
    moves = {
        "promote": lambda: promote(state, policy, now=now),
        "pause": lambda: pause(state, "test", now=now),
        "resume": lambda: resume(state, policy, now=now),
        "abort": lambda: abort(state, "test", now=now),
        "restart": lambda: restart(state, policy, now=now),
        "edit": lambda: Transition(operator_edited(state, (state.percent + 0.5) % 100, now=now), None),
    }
    return moves[event]()
