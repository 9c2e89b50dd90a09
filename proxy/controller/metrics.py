"""The controller's metrics, on the registry its listener serves at GET /metrics.

Owns: strangler_rollout_step{route} (the index in `steps` of the step reached, 0 for the first),
strangler_rollout_percent_target{route} (the percent the controller holds the route at),
strangler_rollout_phase{route, phase} (1 for the current of progressing, paused, succeeded, aborted;
0 for the others), strangler_rollout_analyses_total{route, result} (passed, failed, inconclusive) and
strangler_rollout_auth_failures_total{reason} (refused operator commands, as the admin listener counts
its own). The gauges are read from the controller's states at scrape time, so they cannot drift from
them and a route that left the file leaves with its series. Owns no decision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.rollout.state import Phase, RolloutState

__all__ = ["PHASES", "RESULTS", "ControllerMetrics", "RolloutGauges"]

PHASES: tuple[Phase, ...] = ("progressing", "paused", "succeeded", "aborted")
RESULTS = ("passed", "failed", "inconclusive")
States = Callable[[], Iterable[tuple[str, RolloutState]]]


class RolloutGauges(Collector):
    """strangler_rollout_step, _percent_target and _phase, read from `source` at each scrape."""

    def __init__(self, source: States) -> None:
        self.source = source

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        step, percent, phase = self._families()
        for route, state in sorted(self.source()):
            step.add_metric([route], state.step_index)
            percent.add_metric([route], state.percent)
            for name in PHASES:
                phase.add_metric([route, name], 1.0 if state.phase == name else 0.0)
        yield from (step, percent, phase)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("strangler_rollout_step",
                              "The step a progressive rollout has reached: its index in the route's steps.",
                              labels=["route"]),
            GaugeMetricFamily("strangler_rollout_percent_target",
                              "The rollout.percent the controller holds the route at (0 once aborted).",
                              labels=["route"]),
            GaugeMetricFamily("strangler_rollout_phase",
                              "1 for the rollout's current phase (progressing, paused, succeeded, aborted).",
                              labels=["route", "phase"]),
        )  # fmt: skip


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry, states: States) -> None:
        self.registry = registry
        self.analyses = Counter(
            "strangler_rollout_analyses_total",
            "Analyses of a progressive rollout, by result: passed, failed, inconclusive.",
            ["route", "result"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "strangler_rollout_auth_failures_total",
            "Operator commands refused for their bearer token, by reason: missing, wrong, throttled.",
            ["reason"],
            registry=registry,
        )
        registry.register(RolloutGauges(states))

    def track(self, route: str) -> None:
        """Every result of a route's analyses shows from the start, at 0 (dashboards need series)."""
        for result in RESULTS:
            self.analyses.labels(route, result)

    def forget(self, route: str) -> None:
        for result in RESULTS:
            with contextlib.suppress(KeyError):  # never counted
                self.analyses.remove(route, result)

    def analysed(self, route: str, result: str) -> None:
        self.analyses.labels(route, result).inc()
