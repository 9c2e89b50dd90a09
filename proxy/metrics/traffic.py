"""The traffic families: requests, their durations (shadow calls included), upstream errors, routing
decisions and the effective rollout percentages, with the cached per-request recording path (label
children are kept, so a request costs dict lookups, not `labels()` calls). Part of ProxyMetrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.metrics.children import Children
from proxy.metrics.labels import DURATION_BUCKETS, KNOWN_METHODS

__all__ = ["RolloutGauge", "TrafficMetrics"]

Percents = Callable[[], Iterable[tuple[str, float]]]


class RolloutGauge(Collector):
    """`strangler_rollout_percent`, read at scrape time from the one owner of the fact (app.py wires
    Resilience.effective_percents over the serving table): nothing sets it, so it cannot drift from what
    the routing step does, and a removed route's series is gone with it."""

    NAME = "strangler_rollout_percent"
    HELP = "The effective share of a route's traffic sent to its candidate, in percent."

    def __init__(self) -> None:
        self.source: Percents = tuple

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["route"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["route"])
        for route, percent in self.source():
            family.add_metric([route], percent)
        yield family


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
        self.rollout_percent = RolloutGauge()
        registry.register(self.rollout_percent)
        self._request_children = Children(self.requests)
        self._duration_children = Children(self.duration)
        self._decision_children = Children(self.decisions)

    def observe_request(
        self, route: str, upstream: str, role: str, method: str, status: int, seconds: float
    ) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"
        self._request_children((route, upstream, role, method, status)).inc()
        self._duration_children((route, upstream, role)).observe(seconds)

    def observe_decision(self, route: str, reason: str) -> None:
        self._decision_children((route, reason)).inc()

    def observe_shadow_call(self, route: str, upstream: str, seconds: float) -> None:
        """The candidate's shadow calls, as role="shadow" in the request duration histogram."""
        self._duration_children((route, upstream, "shadow")).observe(seconds)

    def upstream_error(self, route: str, upstream: str, kind: str) -> None:
        self.upstream_errors.labels(route, upstream, kind).inc()

    def rollout_from(self, source: Percents) -> None:
        """Where `strangler_rollout_percent` reads the effective percentages at each scrape."""
        self.rollout_percent.source = source

    def requests_by_role(self) -> dict[tuple[str, str], float]:
        """(route, role) -> requests answered, summed over upstreams, methods and codes (admin API)."""
        counts: dict[tuple[str, str], float] = {}
        for metric in self.requests.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["route"], sample.labels["role"])
                    counts[key] = counts.get(key, 0.0) + sample.value
        return counts
