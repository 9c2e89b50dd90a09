"""RolloutState as versioned JSON: what is saved is what a restarted controller reads back."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.progressive import Progressive
from proxy.rollout.state import RolloutState, abort, operator_edited, start
from proxy.rollout.statefile import StateFileError, dump_states, load_states, state_from_dict, state_to_dict

POLICY = Progressive.model_validate(
    {"steps": [1, 5, "pause", 25, 100], "checks": {"error_rate": {"max_increase": 0.01}}}
)


def test_every_phase_reads_back_as_it_was_written() -> None:
    progressing = start(POLICY, 0, now=1700000000.5).state
    states = {
        "images": progressing,
        "thumbs": operator_edited(progressing, 3, now=2),
        "legacy-ui": abort(progressing, "by hand", now=3).state,
        "done": start(POLICY, 100, now=4).state,
    }
    text = dump_states(states)

    assert load_states(text) == states
    document = json.loads(text)
    assert document["version"] == 1
    assert list(document["routes"]) == sorted(states)
    assert document["routes"]["images"]["steps"] == [1.0, 5.0, "pause", 25.0, 100.0]
    assert document["routes"]["thumbs"]["paused_by"] == "operator"


@given(
    percent=st.floats(0, 100),
    index=st.integers(0, 4),
    counts=st.tuples(st.integers(0, 99), st.integers(0, 99)),
    reason=st.text(),
    now=st.floats(0, 4e9),
)
def test_any_state_survives_the_round_trip(
    percent: float, index: int, counts: tuple[int, int], reason: str, now: float
) -> None:
    steps = (1.0, "pause", 100.0)
    state = RolloutState("progressing", index, percent, *counts, percent, reason, now, None, steps)
    assert state_from_dict(json.loads(json.dumps(state_to_dict(state)))) == state


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"version": 2, "routes": {}}', "version must be 1 (got 2)"),
        ('{"routes": {}}', "version must be 1 (got None)"),
        ('{"version": 1, "routes": []}', "routes: must be an object"),
        ('{"version": 1, "routes": {"a": 3}}', "routes.a: must be an object"),
    ],
)
def test_an_unreadable_file_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(StateFileError, match=re.escape(message)):
        load_states(text)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phase", "running", "routes.images.phase: must be one of progressing, paused, succeeded, aborted"),
        ("step_index", True, "routes.images.step_index: must be a whole number"),
        ("percent", "5", "routes.images.percent: must be a number"),
        ("paused_by", "cron", "routes.images.paused_by: must be null or a pause cause"),
        ("steps", [1, "wait"], "routes.images.steps: must be a list of steps"),
        ("colour", "red", "routes.images: unknown field 'colour'"),
    ],
)
def test_a_bad_field_is_named(field: str, value: object, message: str) -> None:
    saved = state_to_dict(start(POLICY, 0, now=0).state)
    document = {"version": 1, "routes": {"images": {**saved, field: value}}}
    with pytest.raises(StateFileError, match=re.escape(message)):
        load_states(json.dumps(document))


def test_a_missing_field_is_named() -> None:
    saved = state_to_dict(start(POLICY, 0, now=0).state)
    del saved["reason"]
    with pytest.raises(StateFileError, match=r"routes\.images\.reason: must be a string"):
        load_states(json.dumps({"version": 1, "routes": {"images": saved}}))
