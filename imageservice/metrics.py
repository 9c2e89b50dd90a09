"""Every metric the image service exports; the names and labels are the contract of the dashboards."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServiceMetrics"]

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
        self._declare_saga_metrics(registry)

    def _declare_saga_metrics(self, registry: CollectorRegistry) -> None:
        """What failed sagas undid, and what they left to settle in the background or to `reconcile`."""
        self.compensations = Counter(
            "imageservice_compensations",
            "Compensating actions of the generation saga, by step and result (ok or failed).",
            ["step", "result"],
            registry=registry,
        )
        self.key_releases = Counter(
            "imageservice_key_releases",
            "Releases of idempotency keys a failed request held: ok (released, or found not to be ours: "
            "a claim that had never landed), deferred (the inline "
            "release failed and was handed to the background), retried (a background attempt failed), "
            "gave_up (the background budget ran out: the key waits for its expiry or `reconcile`).",
            ["result"],
            registry=registry,
        )
        self.unsettled_keys = Gauge(
            "imageservice_unsettled_keys",
            "Keys this process still holds after their request ended (a release being retried, a commit "
            "whose outcome is unknown being settled; without an Idempotency-Key, the generation alone). "
            "Non-zero for long means stuck keys.",
            registry=registry,
        )
        self.abandoned_keys = Counter(
            "imageservice_abandoned_keys",
            "Keys left held for `reconcile` or their in-progress expiry, by reason (release_gave_up, "
            "commit_unresolved, shutdown).",
            ["reason"],
            registry=registry,
        )
        self.uncertain_commits = Counter(
            "imageservice_uncertain_commits",
            "Metadata writes that failed without saying whether they landed, by how they were resolved: "
            "landed, not_landed (compensated), unknown (blobs and key kept, settled in the background).",
            ["resolution"],
            registry=registry,
        )
