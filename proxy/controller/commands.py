"""Operators' commands: promote, pause, resume, abort and restart one route's rollout, in effect at once.

Owns: Action, ACTIONS, UnknownRoute and command(): read the routes file, notice an operator's own edit
first, make the state machine's move, write its percent now (not at the next interval) and start a whole
interval before the next analysis. Every command is logged with by="operator". Does not own the moves
(proxy/rollout/state.py: a move that does not apply raises Refused, and nothing changes), writing
(rollouts.py) nor HTTP (listener.py).
"""

from __future__ import annotations

from typing import Literal

import structlog

from proxy.controller.rollouts import Entry, Rollouts
from proxy.rollout import state as machine
from proxy.rollout.state import Transition

__all__ = ["ACTIONS", "Action", "UnknownRoute", "command"]

_log = structlog.get_logger("proxy.controller")
Action = Literal["promote", "pause", "resume", "abort", "restart"]
ACTIONS: tuple[Action, ...] = ("promote", "pause", "resume", "abort", "restart")


class UnknownRoute(KeyError):
    """No route of that name has a progressive block in the routes file."""


async def command(rollouts: Rollouts, route: str, action: Action, *, reason: str = "") -> Entry:
    """Raises UnknownRoute, state.Refused, rollouts.NotWritten, or OSError when the file cannot be read."""
    async with rollouts.lock:
        text = await rollouts.target.read()
        entry = rollouts.entries.get(route)
        if entry is None:
            raise UnknownRoute(route)
        await rollouts.notice_edit(route, text)
        transition = _move(entry, action, reason, now=rollouts.clock())
        _log.info("rollout_command", route=route, action=action, by="operator", reason=reason or None)
        await rollouts.apply(route, transition, text=text, by="operator", action=action)
        entry.due = rollouts.monotonic() + entry.policy.interval_s  # a whole interval at the new state
        return entry


def _move(entry: Entry, action: Action, reason: str, *, now: float) -> Transition:
    state, policy = entry.state, entry.policy
    if action == "promote":
        return machine.promote(state, policy, now=now)
    if action == "pause":
        return machine.pause(state, reason or "by the controller's API", now=now)
    if action == "resume":
        return machine.resume(state, policy, now=now)
    if action == "abort":
        return machine.abort(state, reason or "by an operator", now=now)
    return machine.restart(state, policy, now=now)
