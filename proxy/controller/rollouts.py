"""Every route's rollout as the controller knows it, and the one way a transition takes effect.

Owns: Entry (a route's policy, state, last verdict, when its next analysis is due), Rollouts (the entries
by route, one lock for every change, the state saved through the Target) and apply(): a Transition's
state saved, its percent written, every change logged; notice_edit() (an operator's own percent in the
file pauses the rollout); NotWritten (why a transition did not take effect). Does not own when analyses
run (loop.py) nor the HTTP side of operator commands (listener.py).

The order of a write: the new text is made and validated first (yamledit.set_percent runs the proxy's own
validator: an invalid file is never written, and the state does not move); then the state is saved with
the new percent as the controller's last write; then the text is written, compare-and-swap on the text
read; only then does the state in memory (what /status and the metrics show) change. A crash between
the save and the write leaves a file whose percent is not the last written one, which a restarted
controller reads as an operator's edit (pause, never overwrite); a write that fails puts the saved state
back. A Conflict re-reads the file: a percent that is still the controller's (someone changed another
line) is written again on the new text, once; any other percent is an operator's edit, and the rollout
pauses (state.operator_edited).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from proxy.config import Config, ConfigError, parse_config
from proxy.config.progressive import Progressive
from proxy.controller.target import Conflict, Target
from proxy.rollout.analysis import Verdict
from proxy.rollout.state import RolloutState, Transition, operator_edited
from proxy.rollout.statefile import dump_states
from proxy.rollout.yamledit import EditError, percent_of, set_percent

__all__ = ["Entry", "NotWritten", "Rollouts"]

_log = structlog.get_logger("proxy.controller")
_PHASE_EVENTS = {"aborted": "rollout_aborted", "paused": "rollout_paused", "succeeded": "rollout_succeeded",
                 "progressing": "rollout_resumed"}  # fmt: skip


class NotWritten(Exception):
    """A transition that did not take effect. `code`: write_refused (the file is invalid, or the percent
    cannot be changed alone), conflict (an operator's edit: paused), write_failed, state_failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Entry:
    policy: Progressive
    state: RolloutState
    due: float  # the monotonic time of the next analysis
    verdict: Verdict | None = None  # the last analysis'
    analysed_at: float | None = None  # its Unix time


class Rollouts:
    def __init__(
        self,
        target: Target,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.entries: dict[str, Entry] = {}
        self.lock = asyncio.Lock()  # held by every read-decide-write: the loop's and the operators'
        self.clock = clock
        self.monotonic = monotonic
        self._parsed: tuple[str, Config | ConfigError] | None = None  # the last text parsed, and what it gave

    def states(self) -> list[tuple[str, RolloutState]]:
        return [(route, entry.state) for route, entry in self.entries.items()]

    async def save(self) -> None:
        """Every route's state as it is in memory; raises NotWritten (state_failed)."""
        await self._save(dict(self.states()))

    def parse(self, text: str) -> Config:
        """`text` validated as the proxy does (parse_config); raises ConfigError. The last text's outcome is
        kept (models are frozen): the loop looks at the same text once per route every refresh, and
        parsing 50 routes costs about 50 ms."""
        if self._parsed is None or self._parsed[0] != text:
            try:
                self._parsed = (text, parse_config(text, filename=self.target.description))
            except ConfigError as exc:
                self._parsed = (text, exc)
        outcome = self._parsed[1]
        if isinstance(outcome, ConfigError):
            raise outcome.with_traceback(None)  # raised again: no traceback piles up on the kept error
        return outcome

    def percent_in(self, text: str, route: str) -> float | None:
        """The route's percent in `text`; None when the text is invalid or has no such rollout."""
        try:
            return percent_of(self.parse(text), route)
        except ConfigError:
            return None

    async def apply(
        self, route: str, transition: Transition, *, text: str, by: str, policy: Progressive | None = None,
        **evidence: Any,
    ) -> None:  # fmt: skip
        """Make `transition` take effect on `route` (a new route with `policy`); hold the lock. `text`: the
        routes file as just read. The state in memory (what /status and the metrics show) changes only
        once the change is in effect. Raises NotWritten, nothing changed then."""
        entry = self.entries.get(route)
        old = entry.state if entry is not None else None
        new, percent = transition
        if percent is not None:
            await self._write(route, new, percent, text, by)
        elif new != old:
            await self._save({**dict(self.states()), route: new})
        if entry is None:
            assert policy is not None, "a new route needs its policy"
            entry = self.entries[route] = Entry(policy, new, self._next(policy))
        entry.state = new
        if percent is not None:
            entry.due = self._next(entry.policy)
        self._said(route, old, new, percent, by, evidence)

    async def notice_edit(self, route: str, text: str) -> None:
        """Pause `route` when `text` holds a percent the controller did not write (hold the lock)."""
        percent, entry = self.percent_in(text, route), self.entries.get(route)
        if percent is None or entry is None:
            return
        old = entry.state
        entry.state = operator_edited(old, percent, now=self.clock())
        if entry.state is old:
            return
        with contextlib.suppress(NotWritten):  # said; the file still shows the edit at the next look
            await self._save(dict(self.states()))
        self._said(route, old, entry.state, None, "operator", {"source": "file"})

    async def _write(self, route: str, new: RolloutState, percent: float, text: str, by: str) -> None:
        """The new text validated, the state saved with it, then the text written compare-and-swap."""
        for attempt in (1, 2):
            try:
                edited = set_percent(text, route, percent, filename=self.target.description)
            except (ConfigError, EditError) as exc:
                errors = exc.errors if isinstance(exc, ConfigError) else [str(exc)]
                _log.warning("rollout_write_refused", route=route, percent=percent, by=by, errors=errors,
                             target=self.target.description)  # fmt: skip
                said = "; ".join(errors)
                raise NotWritten("write_refused", f"{percent:g} % not written: {said}") from None
            await self._save({**dict(self.states()), route: new})
            try:
                await self.target.write(edited, expected=text)
                return
            except Conflict:
                text = await self._reread()
                entry = self.entries.get(route)
                ours = entry is not None and self.percent_in(text, route) == entry.state.last_written_percent
                if attempt == 1 and ours:
                    continue  # another line changed, not the percent: write on the new text
                await self.notice_edit(route, text)
                said = f"{self.target.description} changed under the controller: {percent:g} % not written"
                raise NotWritten("conflict", said + " (an operator's percent pauses the rollout)") from None
            except OSError as exc:
                await self._restore()
                _log.error("rollout_write_failed", route=route, percent=percent, by=by, error=str(exc),
                           target=self.target.description)  # fmt: skip
                raise NotWritten("write_failed", f"{percent:g} % not written: {exc}") from None

    async def _reread(self) -> str:
        await self._restore()
        try:
            return await self.target.read()
        except OSError as exc:
            raise NotWritten("write_failed", f"cannot read {self.target.description} again: {exc}") from None

    async def _save(self, states: dict[str, RolloutState]) -> None:
        try:
            await self.target.save_state(dump_states(states))
        except OSError as exc:
            _log.error("rollout_state_not_saved", target=self.target.description, error=str(exc))
            raise NotWritten("state_failed", f"the controller's state cannot be saved: {exc}") from None

    async def _restore(self) -> None:
        """The saved state back to the one in memory, after a write that did not happen (if this fails
        too, the saved state reads as an operator's edit after a restart: a pause, never a write)."""
        with contextlib.suppress(NotWritten):
            await self._save(dict(self.states()))

    def _next(self, policy: Progressive) -> float:
        return self.monotonic() + policy.interval_s

    def _said(
        self, route: str, old: RolloutState | None, new: RolloutState, percent: float | None, by: str,
        evidence: dict[str, Any],
    ) -> None:  # fmt: skip
        """One INFO line per change: the percent written (rollout_step), the phase entered."""
        fields = {"route": route, "by": by, "phase": new.phase, "step": new.step_index,
                  "percent": new.percent, "reason": new.reason, **evidence}  # fmt: skip
        was = old.percent if old is not None else None
        if percent is not None and new.phase != "aborted":
            _log.info("rollout_step", from_percent=was, to_percent=percent, **fields)
        if old is None or (new.phase, new.paused_by) != (old.phase, old.paused_by):
            event = "rollout_started" if old is None else _PHASE_EVENTS[new.phase]
            _log.info(event, from_percent=was, paused_by=new.paused_by, **fields)
