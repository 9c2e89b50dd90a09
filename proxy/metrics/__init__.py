"""Every metric the proxy exports, created once per registry (the names are a contract with dashboards).

Owns the Prometheus objects and the cheap per-request recording path. Owns no decision about what
happened. ProxyMetrics gathers the families of traffic.py, operations.py, shadow.py and capacity.py;
ResilienceMetrics (resilience.py) is created by the resilience state on the same registry; the rollout
gauge (traffic.RolloutGauge) is read at scrape time from resilience.state, the fact's one owner; labels.py
holds the buckets and the bounded label values. Under `serve --workers N` the parent exports WorkersMetrics
(workers.py) and merges its workers' expositions by the rules of merge.py. Imports nothing of the proxy:
any module may use it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from proxy.metrics.capacity import CapacityMetrics
from proxy.metrics.labels import (
    AUTH_FAILURE_REASONS,
    DURATION_BUCKETS,
    KNOWN_METHODS,
    LATENCY_RATIO_BUCKETS,
    SHADOW_OUTCOMES,
    WATCH_EVENTS,
)
from proxy.metrics.operations import OperationsMetrics
from proxy.metrics.resilience import ResilienceMetrics
from proxy.metrics.shadow import ShadowMetrics
from proxy.metrics.traffic import TrafficMetrics
from proxy.metrics.workers import WorkersMetrics

__all__ = [
    "AUTH_FAILURE_REASONS", "DURATION_BUCKETS", "KNOWN_METHODS", "LATENCY_RATIO_BUCKETS", "SHADOW_OUTCOMES",
    "WATCH_EVENTS", "ProxyMetrics", "ResilienceMetrics", "WorkersMetrics",
]  # fmt: skip


class ProxyMetrics(TrafficMetrics, OperationsMetrics, ShadowMetrics, CapacityMetrics):
    """The proxy's metrics in one registry; tests pass a fresh registry and read `get_sample_value`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # The order of declaration is the order of the exposition: keep it.
        self._declare_traffic(registry)
        self._declare_reloads(registry)
        self._declare_shadow(registry)
        self._declare_capacity(registry)
        self._declare_operations(registry)
