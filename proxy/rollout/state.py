"""The progressive rollout of one route as a state machine: pure transitions, the time passed in.

Owns: RolloutState, Transition (the new state and the percent to write, if any), Refused, and every
move: start, after_analysis, promote, pause, resume, abort, restart, operator_edited, replan. Does not
own the verdict (analysis.py), writing the percent (yamledit.py and the controller) nor persisting
the state (statefile.py).

The rules:
- start places the route at the last step at or below the file's percent and keeps that percent
  (a percent between two steps goes on to the step above it); below the first step, the first step is
  set at once. Reaching the last step is `succeeded`: at 100 % the primary has no traffic left to
  compare with, and the route's guard keeps watching.
- A passed analysis moves to the next step. max_failures failed analyses in a row abort (percent 0);
  only a passed one resets that count (an inconclusive one neither resets nor adds). max_inconclusive
  inconclusive analyses in a row pause (paused_by "traffic").
- A `pause` step waits for promote with the percent of the step before it (paused_by "step"); there,
  analyses still run and failures still abort, as the controller owns the percent.
- An operator's pause, or an operator's edit of the percent (paused_by "operator"), and a pause for too
  little traffic are hands-off: analyses are ignored and nothing is written until resume (or promote),
  which goes on from the percent in the file. The controller never writes over a human's percent.
- Aborted is final for the controller: resume and promote are refused; it starts again only when an
  operator edits the percent (then it is paused by that edit: resume goes on from there) or restarts
  it (from the first step). Abort of an aborted rollout changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from proxy.config.progressive import PAUSE, Progressive
from proxy.rollout.analysis import Verdict

__all__ = [
    "PausedBy", "Phase", "Refused", "RolloutState", "Steps", "Transition", "abort", "after_analysis",
    "operator_edited", "pause", "promote", "replan", "restart", "resume", "start",
]  # fmt: skip

Phase = Literal["progressing", "paused", "succeeded", "aborted"]
PausedBy = Literal["step", "operator", "traffic"]
Steps = tuple[float | Literal["pause"], ...]


class Refused(ValueError):
    """An operator's command that does not apply in the rollout's phase; the message says what does."""


@dataclass(frozen=True, slots=True)
class RolloutState:
    phase: Phase
    step_index: int  # index in steps of the step reached (after an operator's edit: the last at or below)
    percent: float  # the route's percent as the controller knows it (the file's)
    failures_in_row: int
    inconclusive_in_row: int
    last_written_percent: float  # what the controller last wrote, or adopted from the file as its own
    reason: str  # why the state is what it is, for a human
    updated_at: float  # the `now` of the transition that made it (seconds, the caller's clock)
    paused_by: PausedBy | None = None  # None unless phase is paused
    steps: Steps = ()  # the steps this state was placed on: replan() when the file's differ


class Transition(NamedTuple):
    state: RolloutState
    set_percent: float | None  # write this percent into routes.yaml, or nothing to write


def _place(steps: Steps, percent: float) -> int:
    """The index of the last numeric step at or below percent; -1 below the first one."""
    found = -1
    for index, step in enumerate(steps):
        if step != PAUSE and step <= percent + 1e-9:
            found = index
    return found


def _goto(policy: Progressive, index: int, *, percent: float, now: float, reason: str) -> Transition:
    """Enter step `index` from `percent` (a pause keeps it; the last step succeeds)."""
    steps: Steps = tuple(policy.steps)
    step = steps[index]
    if step == PAUSE:
        why = f"{reason}; step {index} is a pause: waiting for promote at {percent:g} %"
        waiting = RolloutState("paused", index, percent, 0, 0, percent, why, now, "step", steps)
        return Transition(waiting, None)
    phase: Phase = "succeeded" if index == len(steps) - 1 else "progressing"
    if phase == "succeeded":
        reason = f"{reason}; {step:g} % is the last step: succeeded"
    state = RolloutState(phase, index, step, 0, 0, step, reason, now, None, steps)
    return Transition(state, None if step == percent else step)


def start(policy: Progressive, configured_percent: float, *, now: float) -> Transition:
    """Begin (or take over) the rollout of a route whose file says `configured_percent`."""
    steps: Steps = tuple(policy.steps)
    index = _place(steps, configured_percent)
    if index < 0:
        return _goto(policy, 0, percent=configured_percent, now=now, reason="started at the first step")
    last = index == len(steps) - 1 or all(step == PAUSE for step in steps[index + 1 :])
    phase: Phase = "succeeded" if last else "progressing"
    said = f"taken over at {configured_percent:g} % from the file (step {index}: {steps[index]:g} %)"
    reason = f"{said}; no step is left: succeeded" if last else said
    state = RolloutState(phase, index, configured_percent, 0, 0, configured_percent, reason, now, None, steps)
    return Transition(state, None)


def after_analysis(state: RolloutState, verdict: Verdict, policy: Progressive, *, now: float) -> Transition:
    """What one interval's verdict does: count it, and step up, abort or pause when it is time."""
    state = replan(state, policy, now=now)
    at_pause = state.phase == "paused" and state.paused_by == "step"
    if not (state.phase == "progressing" or at_pause):
        return Transition(state, None)  # hands off: paused by an operator or for traffic, or finished
    waiting = f"waiting for promote at {state.percent:g} %; " if at_pause else ""
    if verdict.result == "failed":
        failures = state.failures_in_row + 1
        if failures >= policy.max_failures:
            return abort(state, f"{failures} failed analyses in a row: {verdict.reason}", now=now)
        why = f"{waiting}analysis failed ({failures} of {policy.max_failures} in a row): {verdict.reason}"
        return Transition(_with(state, now, why, failures_in_row=failures, inconclusive_in_row=0), None)
    if verdict.result == "inconclusive":
        count = state.inconclusive_in_row + 1
        if count >= policy.max_inconclusive and not at_pause:
            why = (f"paused: {count} inconclusive analyses in a row ({verdict.reason}); resume when there is "
                   "traffic again, or promote")
            paused = _with(state, now, why, phase="paused", paused_by="traffic", inconclusive_in_row=0)
            return Transition(paused, None)
        limit = policy.max_inconclusive
        why = f"{waiting}analysis inconclusive ({count} of {limit} in a row): {verdict.reason}"
        return Transition(_with(state, now, why, inconclusive_in_row=count), None)
    if at_pause:
        why = f"{waiting}analysis passed: {verdict.reason}"
        return Transition(_with(state, now, why, failures_in_row=0, inconclusive_in_row=0), None)
    reason = f"analysis passed at {state.percent:g} %: {verdict.reason}"
    return _goto(policy, state.step_index + 1, percent=state.percent, now=now, reason=reason)


def promote(state: RolloutState, policy: Progressive, *, now: float) -> Transition:
    """Go to the next step now: past a pause, or without waiting for the next analysis."""
    if state.phase in ("aborted", "succeeded"):
        raise Refused(_finished(state))
    state = replan(state, policy, now=now)
    steps: Steps = tuple(policy.steps)
    at_pause = steps[state.step_index] == PAUSE  # waiting there, or paused by an operator while it did
    following = state.step_index + 1 if at_pause else _place(steps, state.percent) + 1
    if following >= len(steps):
        why = f"promoted at {state.percent:g} %, past the last step: succeeded"
        return Transition(_with(state, now, why, phase="succeeded", paused_by=None,
                                last_written_percent=state.percent), None)  # fmt: skip
    return _goto(policy, following, percent=state.percent, now=now, reason="promoted by an operator")


def pause(state: RolloutState, reason: str, *, now: float) -> Transition:
    """An operator's pause: the controller writes nothing and ignores analyses until resume."""
    if state.phase in ("aborted", "succeeded"):
        raise Refused(_finished(state))
    paused = _with(state, now, f"paused by an operator: {reason}", phase="paused", paused_by="operator")
    return Transition(paused, None)


def resume(state: RolloutState, policy: Progressive, *, now: float) -> Transition:
    """Go on after an operator's pause or edit, or a pause for traffic, from the percent in the file."""
    if state.phase != "paused":
        raise Refused(_finished(state) if state.phase != "progressing" else "the rollout is not paused")
    if state.paused_by == "step":
        raise Refused(f"step {state.step_index} is a pause: promote to go on")
    state_now, set_percent = start(policy, state.percent, now=now)
    return Transition(dataclasses.replace(state_now, reason=f"resumed: {state_now.reason}"), set_percent)


def abort(state: RolloutState, reason: str, *, now: float) -> Transition:
    """Back to 0 %: the candidate gets no traffic until an operator edits the percent or restarts."""
    if state.phase == "aborted":
        return Transition(state, None)
    aborted = _with(state, now, f"aborted: {reason}", phase="aborted", paused_by=None, percent=0.0,
                    last_written_percent=0.0, failures_in_row=0, inconclusive_in_row=0)  # fmt: skip
    return Transition(aborted, None if state.percent == 0 else 0.0)


def restart(state: RolloutState, policy: Progressive, *, now: float) -> Transition:
    """Start an aborted rollout again from its first step."""
    if state.phase != "aborted":
        raise Refused("only an aborted rollout restarts; a paused one resumes")
    return _goto(policy, 0, percent=state.percent, now=now, reason="restarted by an operator")


def operator_edited(state: RolloutState, percent_in_file: float, *, now: float) -> RolloutState:
    """Notice a percent in the file that the controller did not write: pause, say so, never overwrite."""
    if abs(percent_in_file - state.last_written_percent) < 1e-9:
        return state
    if state.paused_by == "operator" and abs(percent_in_file - state.percent) < 1e-9:
        return state  # already noticed
    why = (f"rollout.percent is {percent_in_file:g} in the file, not the {state.last_written_percent:g} the "
           f"controller wrote: paused; resume goes on from {percent_in_file:g} %")
    index = max(_place(state.steps, percent_in_file), 0)
    return _with(state, now, why, phase="paused", paused_by="operator", percent=percent_in_file,
                 step_index=index)  # fmt: skip


def replan(state: RolloutState, policy: Progressive, *, now: float) -> RolloutState:
    """Place a state on the file's steps when they are not the ones it was placed on (an edited block)."""
    steps: Steps = tuple(policy.steps)
    if state.steps == steps:
        return state
    if state.phase == "aborted" or state.paused_by in ("operator", "traffic"):
        index = max(_place(steps, state.percent), 0)
        return _with(state, now, f"{state.reason} (steps changed in the file)", step_index=index, steps=steps)
    moved = start(policy, state.percent, now=now).state  # keeps the percent: nothing to write
    return dataclasses.replace(moved, reason=f"the steps changed in the file: {moved.reason}")


def _with(state: RolloutState, now: float, reason: str, **changes: Any) -> RolloutState:
    return dataclasses.replace(state, reason=reason, updated_at=now, **changes)


def _finished(state: RolloutState) -> str:
    if state.phase == "aborted":
        return "the rollout was aborted: edit rollout.percent in the file, or restart it from the first step"
    return "the rollout has succeeded: there is no step left"
