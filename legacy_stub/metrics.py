"""Every metric the stub exports, created once per app on the app's own CollectorRegistry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LegacyMetrics"]


class LegacyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.generations = Counter(
            "legacy_image_generations",
            "Image generations finished by the single worker, by outcome (stored, shadow, failed).",
            ["outcome"],
            registry=registry,
        )
        self.images = Counter("legacy_images_painted", "Images painted by the worker.", registry=registry)
        self.queue_depth = Gauge(
            "legacy_image_queue_depth", "Generations waiting for the single worker.", registry=registry
        )
        self.in_progress = Gauge(
            "legacy_image_generations_in_progress",
            "Generations the worker is painting right now (never more than 1).",
            registry=registry,
        )
        self.generation_seconds = Histogram(
            "legacy_image_generation_seconds",
            "Time from a generation entering the queue to its last image being painted.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
            registry=registry,
        )
        self.idempotent_replays = Counter(
            "legacy_image_idempotent_replays",
            "POST /api/images answered from a stored response for a repeated Idempotency-Key.",
            registry=registry,
        )
        self.orders = Counter("legacy_orders_created", "Orders created.", registry=registry)
        self.shadow_markers = Counter(
            "legacy_shadow_markers",
            "Requests that carried X-Strangler-Shadow, by verdict: signed (a genuine shadow copy), ignored "
            "(no key configured), unsigned, forged or expired (each treated as a normal request).",
            ["verdict"],
            registry=registry,
        )
