"""The traffic families: requests, their durations (shadow calls included), upstream errors, routing
decisions and the effective rollout percentages, with the cached per-request recording path (label
children are kept, so a request costs dict lookups, not `labels()` calls). Part of ProxyMetrics."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from proxy.metrics.labels import DURATION_BUCKETS, KNOWN_METHODS

__all__ = ["TrafficMetrics"]


class TrafficMetrics:
    def _declare_traffic(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "strangler_requests_total",
            "Requests answered by the proxy, by route, upstream, role, method and status code.",
            ["route", "upstream", "role", "method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "strangler_request_duration_seconds",
            "Time from receiving a request to finishing its response body.",
            ["route", "upstream", "role"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "strangler_upstream_errors_total",
            "Failed upstream calls by kind: connect, timeout, reset, protocol.",
            ["route", "upstream", "kind"],
            registry=registry,
        )
        self.decisions = Counter(
            "strangler_decisions_total",
            "Routing decisions on routes with a candidate, by the reason that decided them.",
            ["route", "reason"],
            registry=registry,
        )
        self.rollout_percent = Gauge(
            "strangler_rollout_percent",
            "The effective share of a route's traffic sent to its candidate, in percent.",
            ["route"],
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, str, str, int], Any] = {}
        self._duration_children: dict[tuple[str, str, str], Any] = {}
        self._decision_children: dict[tuple[str, str], Any] = {}
        self._rollout_routes: set[str] = set()
        self.counts_by_role: Tally[tuple[str, str]] = Tally()

    def observe_request(
        self, route: str, upstream: str, role: str, method: str, status: int, seconds: float
    ) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"
        key = (route, upstream, role, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(route, upstream, role, method, str(status))
            self._request_children[key] = child
        child.inc()
        dkey = (route, upstream, role)
        hist = self._duration_children.get(dkey)
        if hist is None:
            hist = self._duration_children[dkey] = self.duration.labels(route, upstream, role)
        hist.observe(seconds)
        self.counts_by_role[(route, role)] += 1

    def observe_decision(self, route: str, reason: str) -> None:
        key = (route, reason)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(route, reason)
        child.inc()

    def observe_shadow_call(self, route: str, upstream: str, seconds: float) -> None:
        """The candidate's shadow calls, as role="shadow" in the request duration histogram."""
        self.duration.labels(route, upstream, "shadow").observe(seconds)

    def upstream_error(self, route: str, upstream: str, kind: str) -> None:
        self.upstream_errors.labels(route, upstream, kind).inc()

    def set_rollout(self, percents: Iterable[tuple[str, float]]) -> None:
        """Publish the effective percentages of the current table; series of removed routes go away."""
        current = dict(percents)
        for gone in self._rollout_routes - current.keys():
            self.rollout_percent.remove(gone)
        for route, percent in current.items():
            self.rollout_percent.labels(route).set(percent)
        self._rollout_routes = set(current)
