"""The capacity families: bytes held for requests (memory and spool), the budgets' refusals, upstreams
with every slot busy. Part of ProxyMetrics; the budgets themselves live in resilience/ and dataplane/."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["CapacityMetrics"]


class CapacityMetrics:
    def _declare_capacity(self, registry: CollectorRegistry) -> None:
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

    def buffer_refused(self, use: str) -> None:
        self.buffer_refusals.labels(use).inc()
