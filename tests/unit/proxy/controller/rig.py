"""A controller on a routes file in a temporary directory, a fake Prometheus and a clock the test moves."""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from proxy.controller.loop import Controller
from proxy.controller.metrics import ControllerMetrics
from proxy.controller.prometheus import Prometheus
from proxy.controller.rollouts import Rollouts
from proxy.controller.target import FileTarget, Target
from proxy.rollout.yamledit import read_percent
from tests.unit.proxy.controller.fake_prometheus import FakePrometheus, Side, fleet

INTERVAL = 30.0
ROUTES = textwrap.dedent("""\
    version: 1
    upstreams:
      legacy: {url: "http://127.0.0.1:8081"}   # the monolith
      new: {url: "http://127.0.0.1:8082"}
    default_upstream: legacy
    routes:
      - name: images            # carved out first
        match: {path_prefix: /api/images}
        primary: legacy
        candidate: new
        rollout:
          percent: 0            # the controller moves this
          sticky_key: ["header:X-User-Id"]
        progressive:
          steps: [10, 50, 100]
          interval_s: 30
          min_requests: 20
          max_failures: 2
          max_inconclusive: 3
          checks:
            error_rate: {max_increase: 0.01}
    """)
HEALTHY = {"primary": [Side(300, 1)], "candidate": [Side(60, 0)]}
FAILING = {"primary": [Side(300, 1)], "candidate": [Side(60, 30)]}
QUIET = {"primary": [Side(3)], "candidate": [Side(1)]}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    path: Path
    clock: Clock
    fake: FakePrometheus
    prometheus: Prometheus

    def controller(self, target: Target | None = None) -> Controller:
        rollouts = Rollouts(target or FileTarget(self.path), clock=self.clock, monotonic=self.clock)
        metrics = ControllerMetrics(CollectorRegistry(), rollouts.states)
        return Controller(rollouts, self.prometheus, metrics)

    def percent(self, route: str = "images") -> float | None:
        return read_percent(self.path.read_text(), route)

    def next_interval(self, sides: dict[str, list[Side]], route: str = "images") -> None:
        """Move the clock one interval on, with these figures for the interval that just ended."""
        self.clock.now += INTERVAL
        fleet(self.fake, route, start=self.clock.now - INTERVAL, end=self.clock.now, sides=sides)


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


async def analysed(controller: Controller, rig: Rig, sides: dict[str, list[Side]],
                   route: str = "images") -> None:  # fmt: skip
    rig.next_interval(sides, route)
    await controller.analyse(route)
