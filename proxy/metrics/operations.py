"""The operations families: configuration reloads and the file watcher, the connection cap and the
descriptor budget, the admin listener's authentication (issue 12). Part of ProxyMetrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.metrics.labels import AUTH_FAILURE_REASONS, WATCH_EVENTS

__all__ = ["OperationsMetrics", "admin_auth_failures"]


def admin_auth_failures(registry: CollectorRegistry) -> Counter:
    """The admin listener's refused requests: a worker's, or the parent's under `serve --workers N`."""
    counter = Counter(
        "strangler_admin_auth_failures_total",
        "Refused admin requests: missing or wrong token, or throttled after repeated failures.",
        ["reason"],
        registry=registry,
    )
    for reason in AUTH_FAILURE_REASONS:
        counter.labels(reason)
    return counter


class OperationsMetrics:
    def _declare_reloads(self, registry: CollectorRegistry) -> None:
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

    def _declare_operations(self, registry: CollectorRegistry) -> None:
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
        self.admin_auth_failures = admin_auth_failures(registry)
        for event in WATCH_EVENTS:
            self.config_watch_events.labels(event)

    def config_watch_event(self, event: str) -> None:
        self.config_watch_events.labels(event).inc()

    def reload_attempt(self, *, ok: bool, at: float) -> None:
        self.reloads.labels("success" if ok else "failure").inc()
        self.last_reload_successful.set(1 if ok else 0)
        if ok:
            self.last_reload_success_timestamp.set(at)

    def initial_load(self, at: float) -> None:
        """The startup load is not a reload attempt, but the gauges must not say 'never loaded'."""
        self.last_reload_successful.set(1)
        self.last_reload_success_timestamp.set(at)
