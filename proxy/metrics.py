"""Every metric the proxy exports, created once per registry (the names are a contract with dashboards).

Owns the Prometheus objects and the cheap per-request recording path (label children are cached, so a
request costs dict lookups, not `labels()` calls). Owns no decision about what happened.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
UPSTREAM_ERROR_KINDS = ("connect", "timeout", "reset", "protocol")
DECISION_REASONS = ("owner", "flag", "percent", "missing_key")
SHADOW_OUTCOMES = (
    "compared", "sampled_out", "skipped_method", "skipped_body", "skipped_budget", "skipped_memory",
    "dropped_full", "error", "timeout",
)  # fmt: skip
SHADOW_KINDS = ("status", "header", "body_shape", "body_value", "image", "noise")
WATCH_EVENTS = ("settled", "renamed", "superseded", "unreadable", "fd_shortage")
AUTH_FAILURE_REASONS = ("missing", "wrong", "throttled")
LATENCY_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)


def method_label(method: str) -> str:
    """Bounded cardinality: a client may send any token as a method."""
    return method if method in KNOWN_METHODS else "OTHER"


class ProxyMetrics:
    """The proxy's metrics in one registry; tests pass a fresh registry and read `get_sample_value`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
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
        self.reloads = Counter(
            "strangler_config_reloads_total",
            "Configuration reload attempts by result (an unchanged file counts as a success).",
            ["result"],
            registry=registry,
        )
        self.last_reload_successful = Gauge(
            "strangler_config_last_reload_successful",
            "1 when the last reload attempt succeeded, 0 when it failed.",
            registry=registry,
        )
        self.last_reload_success_timestamp = Gauge(
            "strangler_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
            registry=registry,
        )
        for result in ("success", "failure"):
            self.reloads.labels(result=result)
        self.shadow_requests = Counter(
            "strangler_shadow_requests_total",
            "Primary-served requests on shadowed routes, by what became of their shadow copy.",
            ["route", "outcome"],
            registry=registry,
        )
        self.shadow_comparisons = Counter(
            "strangler_shadow_comparisons_total",
            "Compared primary/candidate pairs by result (differences that are only noise: match).",
            ["route", "result"],
            registry=registry,
        )
        self.shadow_mismatches = Counter(
            "strangler_shadow_mismatches_total",
            "Compared pairs with at least one difference of a kind (noise: differences excused as noise).",
            ["route", "kind"],
            registry=registry,
        )
        self.shadow_latency_ratio = Histogram(
            "strangler_shadow_latency_ratio",
            "Candidate latency divided by primary latency, for compared pairs.",
            ["route"],
            buckets=LATENCY_RATIO_BUCKETS,
            registry=registry,
        )
        self.buffer_bytes = Gauge(
            "strangler_buffer_bytes",
            "Bytes the proxy holds for requests now: memory (buffered bodies, fallback and shadow copies, "
            "out of limits.memory_budget_bytes) and spool (temporary files, limits.spool_budget_bytes).",
            ["kind"],
            registry=registry,
        )
        self.buffer_refusals = Counter(
            "strangler_buffer_refusals_total",
            "Times a budget said no: request_buffer (spooled instead of kept in memory), busy (neither "
            "budget could hold a body: 503), fallback (not kept for a replay), shadow (not mirrored).",
            ["use"],
            registry=registry,
        )
        for kind in ("memory", "spool"):
            self.buffer_bytes.labels(kind)
        for use in ("request_buffer", "busy", "fallback", "shadow"):
            self.buffer_refusals.labels(use)
        self.upstream_busy = Counter(
            "strangler_upstream_busy_total",
            "Requests refused with 503 upstream_busy: every slot of the upstream (max_connections) stayed "
            "busy for its queue_timeout_s.",
            ["route", "upstream"],
            registry=registry,
        )
        self._operations(registry)
        self._request_children: dict[tuple[str, str, str, str, int], Any] = {}
        self._duration_children: dict[tuple[str, str, str], Any] = {}
        self._decision_children: dict[tuple[str, str], Any] = {}
        self._rollout_routes: set[str] = set()
        self.counts_by_role: Tally[tuple[str, str]] = Tally()

    def _operations(self, registry: CollectorRegistry) -> None:
        """The watcher, the descriptor budget and the admin listener's authentication (issue 12)."""
        self.config_watch_events = Counter(
            "strangler_config_watch_events_total",
            "What the file watcher saw: settled/renamed (applied), superseded (a state never applied), "
            "unreadable, fd_shortage.",
            ["event"],
            registry=registry,
        )
        self.connection_limit = Gauge(
            "strangler_connection_limit",
            "The client connection cap in force: limits.max_connections, or less when file descriptors "
            "allow less.",
            registry=registry,
        )
        self.open_files_limit = Gauge(
            "strangler_open_files_limit",
            "The process's open-file limit (soft RLIMIT_NOFILE).",
            registry=registry,
        )
        self.connections_refused = Counter(
            "strangler_connections_refused_total",
            "Client connections answered 503 too_many_connections and closed.",
            registry=registry,
        )
        self.admin_auth_failures = Counter(
            "strangler_admin_auth_failures_total",
            "Refused admin requests: missing or wrong token, or throttled after repeated failures.",
            ["reason"],
            registry=registry,
        )
        for event in WATCH_EVENTS:
            self.config_watch_events.labels(event)
        for reason in AUTH_FAILURE_REASONS:
            self.admin_auth_failures.labels(reason)

    def config_watch_event(self, event: str) -> None:
        self.config_watch_events.labels(event).inc()

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

    def init_shadow(self, routes: Iterable[str]) -> None:
        """Shadowed routes show every outcome and result from the start, at 0 (dashboards need series)."""
        for route in routes:
            for outcome in SHADOW_OUTCOMES:
                self.shadow_requests.labels(route, outcome)
            for result in ("match", "mismatch"):
                self.shadow_comparisons.labels(route, result)

    def shadow_outcome(self, route: str, outcome: str) -> None:
        self.shadow_requests.labels(route, outcome).inc()

    def shadow_compared(
        self, route: str, *, real: Iterable[str], noise: bool, latency_ratio: float | None
    ) -> None:
        kinds = set(real)
        self.shadow_comparisons.labels(route, "mismatch" if kinds else "match").inc()
        if noise:
            kinds.add("noise")
        for kind in kinds:
            self.shadow_mismatches.labels(route, kind).inc()
        if latency_ratio is not None:
            self.shadow_latency_ratio.labels(route).observe(latency_ratio)

    def observe_shadow_call(self, route: str, upstream: str, seconds: float) -> None:
        """The candidate's shadow calls, as role="shadow" in the request duration histogram."""
        self.duration.labels(route, upstream, "shadow").observe(seconds)

    def buffer_refused(self, use: str) -> None:
        self.buffer_refusals.labels(use).inc()

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

    def reload_attempt(self, *, ok: bool, at: float) -> None:
        self.reloads.labels("success" if ok else "failure").inc()
        self.last_reload_successful.set(1 if ok else 0)
        if ok:
            self.last_reload_success_timestamp.set(at)

    def initial_load(self, at: float) -> None:
        """The startup load is not a reload attempt, but the gauges must not say 'never loaded'."""
        self.last_reload_successful.set(1)
        self.last_reload_success_timestamp.set(at)
