"""The metrics' fixed vocabulary: histogram buckets, the methods kept as labels, and the bounded label
values the families declare at 0 (dashboards need the series before the first event). Owns no
Prometheus object."""

from __future__ import annotations

__all__ = [
    "AUTH_FAILURE_REASONS", "DURATION_BUCKETS", "KNOWN_METHODS", "LATENCY_RATIO_BUCKETS",
    "SHADOW_BODY_RESULTS", "SHADOW_OUTCOMES", "WATCH_EVENTS",
]  # fmt: skip

DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
SHADOW_OUTCOMES = (
    "compared", "sampled_out", "skipped_method", "skipped_body", "skipped_budget", "skipped_memory",
    "dropped_full", "error", "timeout",
)  # fmt: skip
SHADOW_BODY_RESULTS = ("kept", "dropped", "too_large")  # the bodies of kept mismatches (shadow/samples.py)
WATCH_EVENTS = ("settled", "renamed", "superseded", "unreadable", "fd_shortage")
AUTH_FAILURE_REASONS = ("missing", "wrong", "throttled")
LATENCY_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)
