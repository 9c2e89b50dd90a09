"""Every metric the image service exports; the names and labels are the contract of the dashboards."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.generations = Counter(
            "imageservice_generations",
            "Generator calls by generator and outcome (ok or the contract's error code).",
            ["generator", "outcome"],
            registry=registry,
        )
        self.generation_duration = Histogram(
            "imageservice_generation_duration_seconds",
            "Time spent in the generator per request.",
            ["generator"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.images = Counter("imageservice_images", "Images stored.", registry=registry)
        self.compensations = Counter(
            "imageservice_compensations",
            "Compensating actions of the generation saga, by step and result (ok or failed).",
            ["step", "result"],
            registry=registry,
        )
        self.idempotent_replays = Counter(
            "imageservice_idempotent_replays",
            "Requests answered from a completed idempotency record without generating.",
            registry=registry,
        )
        self.in_flight = Gauge("imageservice_in_flight", "Generations running now.", registry=registry)
        self.rejected = Counter(
            "imageservice_rejected",
            "Requests refused before generating, by reason.",
            ["reason"],
            registry=registry,
        )
        self.shadow_markers = Counter(
            "imageservice_shadow_markers",
            "Requests that carried X-Strangler-Shadow, by verdict: signed (a genuine shadow copy), ignored "
            "(no key configured), unsigned, forged or expired (each treated as a normal request).",
            ["verdict"],
            registry=registry,
        )
