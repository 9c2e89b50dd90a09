"""The parent's own families under `serve --workers N`: the workers running, the ones replaced, the
scrapes of a worker that failed, and the refused admin requests (the parent checks the token). The
parent's /metrics merges them with its workers' (merge.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.metrics.operations import admin_auth_failures

__all__ = ["WorkersMetrics"]


class WorkersMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.workers = Gauge(
            "strangler_workers",
            "Worker processes running now (serve --workers N; exported by the parent).",
            registry=registry,
        )
        self.restarts = Counter(
            "strangler_workers_restarts_total",
            "Workers that exited unexpectedly and were replaced by a new process.",
            registry=registry,
        )
        self.scrape_errors = Counter(
            "strangler_workers_scrape_errors_total",
            "Scrapes of a worker's metrics that failed; its last scraped values stood in for it.",
            registry=registry,
        )
        self.admin_auth_failures = admin_auth_failures(registry)
