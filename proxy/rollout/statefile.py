"""RolloutState as JSON, versioned, so a restarted controller resumes where it stopped.

Owns: the JSON shape of one state and of a file of states by route name, and reading them back with
clear errors. Does not own where the text is kept (the controller reads and writes the file) nor what
the fields mean (state.py).

The document is `{"version": 1, "routes": {"<route>": {<state>}}}`; a state is its fields by name.
A version this code does not know is refused, never guessed at.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, get_args

from proxy.config.progressive import PAUSE
from proxy.rollout.state import PausedBy, Phase, RolloutState, Steps

__all__ = ["VERSION", "StateFileError", "dump_states", "load_states", "state_from_dict", "state_to_dict"]

VERSION = 1


class StateFileError(ValueError):
    """The saved states cannot be read; the message says which field and why."""


def state_to_dict(state: RolloutState) -> dict[str, Any]:
    return {
        "phase": state.phase,
        "step_index": state.step_index,
        "percent": state.percent,
        "failures_in_row": state.failures_in_row,
        "inconclusive_in_row": state.inconclusive_in_row,
        "last_written_percent": state.last_written_percent,
        "reason": state.reason,
        "updated_at": state.updated_at,
        "paused_by": state.paused_by,
        "steps": list(state.steps),
    }


def state_from_dict(data: Any, *, where: str = "state") -> RolloutState:
    if not isinstance(data, dict):
        raise StateFileError(f"{where}: must be an object")
    unknown = sorted(set(data) - set(RolloutState.__dataclass_fields__))
    if unknown:
        raise StateFileError(f"{where}: unknown field {unknown[0]!r}")

    def field(name: str, check: Any, what: str) -> Any:
        if name not in data or not check(data[name]):
            raise StateFileError(f"{where}.{name}: must be {what}")
        return data[name]

    phase = field("phase", lambda v: v in get_args(Phase), "one of " + ", ".join(get_args(Phase)))
    paused_by = field("paused_by", lambda v: v is None or v in get_args(PausedBy), "null or a pause cause")
    steps = field("steps", lambda v: isinstance(v, list) and all(map(_is_step, v)), "a list of steps")
    return RolloutState(
        phase=phase,
        step_index=field("step_index", _is_int, "a whole number"),
        percent=float(field("percent", _is_number, "a number")),
        failures_in_row=field("failures_in_row", _is_int, "a whole number"),
        inconclusive_in_row=field("inconclusive_in_row", _is_int, "a whole number"),
        last_written_percent=float(field("last_written_percent", _is_number, "a number")),
        reason=field("reason", lambda v: isinstance(v, str), "a string"),
        updated_at=float(field("updated_at", _is_number, "a number")),
        paused_by=paused_by,
        steps=_steps(steps),
    )


def dump_states(states: Mapping[str, RolloutState]) -> str:
    """The text of a state file holding every route's state (sorted, one field a line)."""
    routes = {name: state_to_dict(states[name]) for name in sorted(states)}
    return json.dumps({"version": VERSION, "routes": routes}, indent=2, allow_nan=False) + "\n"


def load_states(text: str) -> dict[str, RolloutState]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateFileError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        version = document.get("version") if isinstance(document, dict) else None
        raise StateFileError(f"version must be {VERSION} (got {version!r}): written by another controller?")
    routes = document.get("routes")
    if not isinstance(routes, dict):
        raise StateFileError("routes: must be an object of states by route name")
    return {name: state_from_dict(value, where=f"routes.{name}") for name, value in routes.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_step(value: Any) -> bool:
    return value == PAUSE or _is_number(value)


def _steps(values: list[Any]) -> Steps:
    return tuple(PAUSE if value == PAUSE else float(value) for value in values)
