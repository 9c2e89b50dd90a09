"""The controller's loop: follow the routes file, run each route's analysis when it is due, apply it.

Owns: Controller — start() (the saved states loaded; every route with a `progressive` block taken on:
resumed from its saved state, or started), follow() (routes added or removed, a block edited: replan;
an operator's own percent: pause), analyse() (figures from Prometheus, judge, after_analysis, one
`rollout_analysis` line with the evidence) and run() (forever; an error is logged, never raised).
Prometheus unreachable makes analyses inconclusive and is said once per outage (prometheus_unavailable,
then prometheus_available), not per interval. Does not own writing a change or its log lines (rollouts.py),
the queries (figures.py), operators' commands (commands.py) nor HTTP (listener.py).

Each route keeps its own interval: its next analysis is due `interval_s` after the last one, or after the
controller last wrote its percent (so an interval never mixes two steps, apart from the reload delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import structlog

from proxy.config import Config, ConfigError
from proxy.config.progressive import Progressive
from proxy.controller.events import figures_dict, state_dict, verdict_dict
from proxy.controller.figures import Unusable, interval_figures
from proxy.controller.metrics import ControllerMetrics
from proxy.controller.prometheus import Prometheus, PrometheusError
from proxy.controller.rollouts import Entry, NotWritten, Rollouts
from proxy.rollout import state as machine
from proxy.rollout.analysis import Figures, Verdict, judge
from proxy.rollout.state import RolloutState, Transition
from proxy.rollout.statefile import StateFileError, load_states

__all__ = ["REFRESH_S", "Controller", "ControllerError"]

_log = structlog.get_logger("proxy.controller")
REFRESH_S = 2.0  # the file is read this often between analyses: routes added, removed or edited


class ControllerError(Exception):
    """The controller cannot start; the message says why and what to do."""


class Controller:
    def __init__(
        self, rollouts: Rollouts, prometheus: Prometheus, metrics: ControllerMetrics, *,
        refresh_s: float = REFRESH_S,
    ) -> None:  # fmt: skip
        self.rollouts, self.prometheus, self.metrics = rollouts, prometheus, metrics
        self.refresh_s = refresh_s
        self.saved: dict[str, RolloutState] = {}  # loaded at start, taken by each route as it is followed
        self.outage_since: float | None = None  # Prometheus unreachable since (Unix time)
        self._said_invalid: str | None = None  # digest of the invalid text said (once per content)
        self._said_unreadable = False
        self._not_started: dict[str, str] = {}  # route -> digest of the text its first step failed on

    async def start(self) -> None:
        """Load the saved states and take on the routes. Raises ControllerError on a state file it cannot
        read: starting afresh could write over an aborted rollout."""
        where = self.rollouts.target.description
        try:
            text = await self.rollouts.target.load_state()
            self.saved = load_states(text) if text is not None else {}
        except (OSError, UnicodeDecodeError, StateFileError) as exc:
            raise ControllerError(f"the controller's state for {where} cannot be read: {exc}; fix it, or "
                                  "move it away to start every rollout afresh from the file") from None
        await self.follow()

    async def run(self) -> None:
        while True:
            try:
                await self.follow()
                now = self.rollouts.monotonic()
                due = [route for route, entry in self.rollouts.entries.items() if entry.due <= now]
                await asyncio.gather(*(self.analyse(route) for route in due))
            except Exception:  # the loop must outlive any one bad turn; said with its traceback
                _log.exception("rollout_loop_error")
            await asyncio.sleep(self._pause())

    def _pause(self) -> float:
        dues = [entry.due for entry in self.rollouts.entries.values()]
        until = min(dues, default=float("inf")) - self.rollouts.monotonic()
        return max(0.05, min(self.refresh_s, until))

    async def follow(self) -> None:
        """Take on routes new to the file, drop those gone, replan edited steps, notice operators' edits."""
        async with self.rollouts.lock:
            text = await self._read()
            config = self._parse(text) if text is not None else None
            if text is None or config is None:
                return  # nothing is known for sure: the last good view stays, nothing is written
            plans = _plans(config)
            for route in [r for r in self.rollouts.entries if r not in plans]:
                await self._drop(route)
            for route, (policy, percent) in plans.items():
                entry = self.rollouts.entries.get(route)
                if entry is None:
                    await self._take_on(route, policy, percent, text)
                else:
                    await self._refresh(route, entry, policy, text)

    async def _take_on(self, route: str, policy: Progressive, percent: float, text: str) -> None:
        saved, now = self.saved.pop(route, None), self.rollouts.clock()
        if saved is not None:
            state = machine.replan(saved, policy, now=now)
            self.rollouts.entries[route] = Entry(policy, state, self.rollouts.monotonic() + policy.interval_s)
            where = self.rollouts.target.description
            _log.info("rollout_loaded", route=route, target=where, **state_dict(state))
            await self.rollouts.notice_edit(route, text)  # an edit while stopped, or a crash before a write
        else:
            digest = _digest(text)
            if self._not_started.get(route) == digest:
                return  # refused on this very text (said then): tried again once the file changes
            try:
                await self.rollouts.apply(route, machine.start(policy, percent, now=now), text=text,
                                          by="controller", policy=policy)  # fmt: skip
            except NotWritten:
                self._not_started[route] = digest
                return
            self._not_started.pop(route, None)
        self.metrics.track(route)

    async def _refresh(self, route: str, entry: Entry, policy: Progressive, text: str) -> None:
        entry.policy = policy
        if tuple(policy.steps) != entry.state.steps:
            moved = machine.replan(entry.state, policy, now=self.rollouts.clock())
            _log.info("rollout_replanned", route=route, **state_dict(moved))
            with contextlib.suppress(NotWritten):  # said; replanned again at the next look
                await self.rollouts.apply(route, Transition(moved, None), text=text, by="file")
        await self.rollouts.notice_edit(route, text)

    async def _drop(self, route: str) -> None:
        del self.rollouts.entries[route]
        self.metrics.forget(route)
        _log.info("rollout_route_removed", route=route, reason="no progressive block for it in the file")
        with contextlib.suppress(NotWritten):  # said; the next save leaves the route out again
            await self.rollouts.save()

    async def _read(self) -> str | None:
        where = self.rollouts.target.description
        try:
            text = await self.rollouts.target.read()
        except (OSError, UnicodeDecodeError) as exc:
            if not self._said_unreadable:
                _log.warning("rollout_target_unreadable", target=where, error=str(exc))
                self._said_unreadable = True
            return None
        if self._said_unreadable:
            _log.info("rollout_target_readable", target=where)
            self._said_unreadable = False
        return text

    def _parse(self, text: str) -> Config | None:
        where = self.rollouts.target.description
        try:
            config = self.rollouts.parse(text)  # an unchanged text is not parsed again
        except ConfigError as exc:
            digest = _digest(text)
            if self._said_invalid != digest:
                _log.warning("rollout_target_invalid", target=where, errors=exc.errors,
                             consequence="the controller writes nothing to it until it is valid again")
                self._said_invalid = digest
            return None
        if self._said_invalid is not None:
            _log.info("rollout_target_valid", target=where)
            self._said_invalid = None
        return config

    async def analyse(self, route: str) -> None:
        """One analysis of `route`, if its rollout is running; its verdict applied (and logged)."""
        entry = self.rollouts.entries[route]
        entry.due = self.rollouts.monotonic() + entry.policy.interval_s
        state, now = entry.state, self.rollouts.clock()
        if not (state.phase == "progressing" or state.paused_by == "step"):
            return  # finished, or hands off (paused by an operator or for traffic)
        verdict, figures = await self._judge(route, entry.policy, now)
        async with self.rollouts.lock:
            text = await self._read()
            if text is not None and self._parse(text) is not None:
                await self.rollouts.notice_edit(route, text)
            if self.rollouts.entries.get(route) is not entry or entry.state is not state:
                _log.info("rollout_analysis_discarded", route=route, verdict=verdict.result,
                          reason="the rollout changed while the figures were fetched")  # fmt: skip
                return
            entry.verdict, entry.analysed_at = verdict, now
            self.metrics.analysed(route, verdict.result)
            transition = machine.after_analysis(state, verdict, entry.policy, now=now)
            self._log_analysis(route, entry.policy, verdict, figures, transition.state)
            if transition.set_percent is not None and text is None:
                _log.warning("rollout_write_refused", route=route, percent=transition.set_percent,
                             errors=[f"{self.rollouts.target.description} cannot be read"])  # fmt: skip
                return
            with contextlib.suppress(NotWritten):  # said by apply; the state stays, the next analysis retries
                await self.rollouts.apply(route, transition, text=text or "", by="controller",
                                          verdict=verdict_dict(verdict))  # fmt: skip

    async def _judge(
        self, route: str, policy: Progressive, now: float
    ) -> tuple[Verdict, tuple[Figures, Figures] | None]:
        try:
            figures = await interval_figures(self.prometheus, route, policy, now=now)
        except PrometheusError as exc:
            if exc.unreachable and self.outage_since is None:
                self.outage_since = now
                _log.warning("prometheus_unavailable", url=self.prometheus.url, error=str(exc),
                             consequence="analyses are inconclusive until it answers")  # fmt: skip
            return Verdict("inconclusive", (), f"no figures from Prometheus: {exc}"), None
        except Unusable as exc:
            return Verdict("inconclusive", (), str(exc)), None
        if self.outage_since is not None:
            after_s = round(now - self.outage_since, 1)
            _log.info("prometheus_available", url=self.prometheus.url, after_s=after_s)
            self.outage_since = None
        try:
            return judge(policy, *figures), figures
        except ValueError as exc:
            return Verdict("inconclusive", (), f"the figures do not add up: {exc}"), figures

    def _log_analysis(
        self, route: str, policy: Progressive, verdict: Verdict, figures: tuple[Figures, Figures] | None,
        after: RolloutState,
    ) -> None:  # fmt: skip
        sides = {} if figures is None else {"primary": figures_dict(figures[0]),
                                            "candidate": figures_dict(figures[1])}  # fmt: skip
        quiet = self.outage_since is not None  # said once per outage, not once per interval
        (_log.debug if quiet else _log.info)(
            "rollout_analysis", route=route, interval_s=policy.interval_s, **verdict_dict(verdict), **sides,
            phase=after.phase, step=after.step_index, percent=after.percent,
            failures_in_row=after.failures_in_row, inconclusive_in_row=after.inconclusive_in_row,
        )  # fmt: skip


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _plans(config: Config) -> dict[str, tuple[Progressive, float]]:
    return {
        route.name: (route.progressive, route.rollout.percent)
        for route in config.routes
        if route.progressive is not None and route.rollout is not None
    }
