"""The shadow families: what became of each shadow copy, the comparisons, the kinds of mismatch, the
candidate/primary latency ratio and the whole bodies kept for the console. Part of ProxyMetrics; owns no
decision about what differs."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from proxy.metrics.children import Children
from proxy.metrics.labels import LATENCY_RATIO_BUCKETS, SHADOW_BODY_RESULTS, SHADOW_OUTCOMES

__all__ = ["ShadowMetrics"]


class ShadowMetrics:
    def _declare_shadow(self, registry: CollectorRegistry) -> None:
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
        self.shadow_bodies_kept = Counter(
            "strangler_shadow_bodies_total",
            "Whole bodies of kept mismatches (JSON, images) for the console: pairs kept, older pairs dropped "
            "to stay within the route's keep_bodies_bytes, pairs too large for it.",
            ["route", "result"],
            registry=registry,
        )
        self._outcome_children = Children(self.shadow_requests)

    def init_shadow(self, routes: Iterable[str]) -> None:
        """Shadowed routes show every outcome and result from the start, at 0 (dashboards need series)."""
        for route in routes:
            for outcome in SHADOW_OUTCOMES:
                self.shadow_requests.labels(route, outcome)
            for result in ("match", "mismatch"):
                self.shadow_comparisons.labels(route, result)
            for kept in SHADOW_BODY_RESULTS:
                self.shadow_bodies_kept.labels(route, kept)

    def shadow_outcome(self, route: str, outcome: str) -> None:
        """Once per request on a shadowed route."""
        self._outcome_children((route, outcome)).inc()

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

    def shadow_bodies(self, route: str, result: str | None, *, dropped: int = 0) -> None:
        """What keeping a mismatch's bodies did: `result` "kept" or "too_large" (None: nothing to keep);
        `dropped` older pairs made room."""
        if result is not None:
            self.shadow_bodies_kept.labels(route, result).inc()
        if dropped:
            self.shadow_bodies_kept.labels(route, "dropped").inc(dropped)
