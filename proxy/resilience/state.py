"""Resilience state of one proxy app: guards per route, circuit breakers per upstream, their metrics.

Owns: RoutePlan (a route's compiled fallback and guard policies) and Resilience, which follows config
reloads and turns what the pure cores decide (guard.py, breaker.py, fallback.py) into logs and metrics
(`strangler_fallbacks_total`, `strangler_guard_tripped`, `strangler_circuit_*`: declared with the other
metrics, in proxy/metrics/resilience.py).
Does not own the request path (dataplane/handler.py and dataplane/failover.py call in here) nor any
socket; the breaker bookkeeping of one call is proxy.client.settle.

Also owns the effective percentage of each route (effective_percent): the one answer the routing step,
the `strangler_rollout_percent` gauge and the admin API all read. Guard state survives a reload that
leaves the route's definition unchanged; an edit of the route resets it (guard.Guards).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import structlog

from proxy.client import settle
from proxy.config import Config, Route
from proxy.config.resilience import Circuit
from proxy.metrics import ProxyMetrics, ResilienceMetrics
from proxy.resilience.breaker import STATES, BreakerPolicy, Breakers
from proxy.resilience.fallback import KINDS, FallbackPolicy
from proxy.resilience.guard import GuardPolicy, Guards
from proxy.routing import CompiledRoute, Decision, RouteTable

__all__ = ["NO_PLAN", "Clock", "Resilience", "RoutePlan", "breaker_policy", "fingerprint", "route_plan"]

_log = structlog.get_logger("proxy.resilience.state")
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RoutePlan:
    fallback: FallbackPolicy | None
    guard: GuardPolicy | None


NO_PLAN = RoutePlan(fallback=None, guard=None)


def route_plan(route: Route) -> RoutePlan:
    fallback = route.fallback
    guard = route.guard
    return RoutePlan(
        fallback=None if fallback is None or route.candidate is None else FallbackPolicy(
            when=frozenset(fallback.when),
            max_body_bytes=fallback.max_body_bytes,
            replay_non_idempotent=fallback.replay_non_idempotent,
        ),
        guard=None if guard is None or route.candidate is None else GuardPolicy(
            max_error_rate=guard.max_error_rate, min_requests=guard.min_requests, window_s=guard.window_s
        ),
    )  # fmt: skip


def breaker_policy(circuit: Circuit) -> BreakerPolicy:
    return BreakerPolicy(failures=circuit.failures, open_s=circuit.open_s, max_open_s=circuit.max_open_s)


def fingerprint(route: Route) -> str:
    """The route's whole definition: any edit of it (and only of it) resets its guard."""
    return json.dumps(route.model_dump(mode="json", by_alias=True), sort_keys=True)


class Resilience:
    def __init__(self, metrics: ProxyMetrics, *, clock: Clock = time.monotonic) -> None:
        self.proxy_metrics = metrics
        self.metrics = ResilienceMetrics(metrics.registry)
        self.guards = Guards(clock=clock)
        self.breakers = Breakers(clock=clock)
        self._plans: Mapping[str, RoutePlan] = MappingProxyType({})
        self._config: Config | None = None

    # -- following the configuration ------------------------------------------------------------
    def follow(self, config: Config) -> None:
        """Adopt a newly loaded config (at start and after every swap)."""
        if config is self._config:
            return
        self._config = config
        self._plans = MappingProxyType({route.name: route_plan(route) for route in config.routes})
        cleared = self.guards.sync(
            (route.name, fingerprint(route), self._plans[route.name].guard) for route in config.routes
        )
        for name in cleared:
            _log.warning("guard_cleared", route=name, why="the route was changed or removed in routes.yaml")
        self.breakers.sync(
            (name, spec.url, breaker_policy(spec.circuit)) for name, spec in config.upstreams.items()
        )
        self._publish()
        self.declare([route.name for route in config.routes])

    def plan(self, route: str) -> RoutePlan:
        return self._plans.get(route, NO_PLAN)

    def _publish(self) -> None:
        self.metrics.guard_tripped.clear()
        for name in self.guards.names():
            self.metrics.guard_tripped.labels(name).set(1 if self.guards.is_tripped(name) else 0)
        self.metrics.circuit_open.clear()
        for upstream, state in self.breakers.states().items():
            self.metrics.circuit_open.labels(upstream).set(0 if state == "closed" else 1)
            for entered in STATES:
                self.metrics.circuit_transitions.labels(upstream, entered)

    # -- the guard -------------------------------------------------------------------------------
    def steer(self, decision: Decision) -> Decision:
        """A tripped guard sends everything the route would give the candidate (flags too) to the primary."""
        if decision.role != "candidate" or decision.reason == "owner":
            return decision  # data that only the candidate holds can only be read there
        if not self.guards.is_tripped(decision.route):
            return decision
        return decision.to_primary()

    def candidate_outcome(self, route: str, *, error: bool) -> None:
        guard = self.guards.get(route)
        if guard is None:
            return
        trip = guard.record(error=error)
        if trip is None:
            return
        _log.error("guard_tripped", route=route, error_rate=round(trip.rate, 4), errors=trip.errors,
                   requests=trip.requests, reason=trip.describe(guard.policy))  # fmt: skip
        self.metrics.guard_tripped.labels(route).set(1)

    def reset_guard(self, route: str) -> bool | None:
        """None: the route has no guard; otherwise whether it was tripped."""
        guard = self.guards.get(route)
        if guard is None:
            return None
        was = guard.reset()
        _log.warning("guard_reset", route=route, was_tripped=was, by="admin")
        self.metrics.guard_tripped.labels(route).set(0)
        return was

    # -- the effective percentage ----------------------------------------------------------------
    def effective_percent(self, route: CompiledRoute) -> float:
        """The share of the route's traffic its candidate gets: the configured percent, 0 for a route
        without a candidate or a rollout, 0 while its guard is tripped."""
        if route.candidate is None or self.guards.is_tripped(route.name):
            return 0.0
        return float(route.percent)

    def effective_percents(self, table: RouteTable) -> list[tuple[str, float]]:
        return [(route.name, self.effective_percent(route)) for route in table.routes]

    # -- the breakers ----------------------------------------------------------------------------
    def admit(self, upstream: str) -> bool:
        breaker = self.breakers.get(upstream)
        if breaker is None:
            return True
        allowed, entered = breaker.allow()
        if entered is not None:
            self._transition(upstream, entered)
        if not allowed:
            self.metrics.circuit_rejections.labels(upstream).inc()
        return allowed

    def settle(self, upstream: str, error: BaseException | None) -> None:
        """Book the end of a call to `upstream` (proxy.client.settle): None when it answered."""
        breaker = self.breakers.get(upstream)
        if breaker is not None and (entered := settle(breaker, error)) is not None:
            self._transition(upstream, entered)

    def _transition(self, upstream: str, entered: str) -> None:
        self.metrics.circuit_transitions.labels(upstream, entered).inc()
        self.metrics.circuit_open.labels(upstream).set(0 if entered == "closed" else 1)
        log = _log.warning if entered != "closed" else _log.info
        log("circuit_" + entered, upstream=upstream)

    # -- fallback --------------------------------------------------------------------------------
    def fell_back(self, route: str, reason: str, *, upstream: str, detail: str, request_id: str) -> None:
        self.metrics.fallbacks.labels(route, reason).inc()
        _log.info("fallback", route=route, reason=reason, candidate=upstream, detail=detail,
                  request_id=request_id)  # fmt: skip

    def declare(self, routes: list[str]) -> None:
        """Create the fallback series at 0 for routes with a fallback block, so dashboards see them."""
        for route in routes:
            if self.plan(route).fallback is not None:
                for kind in KINDS:
                    self.metrics.fallbacks.labels(route, kind)
