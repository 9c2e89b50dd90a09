"""The resilience families: fallbacks, tripped guards and the circuit breakers' state, transitions and
rejections. Created by resilience.state.Resilience on the app's registry; owns no policy."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ResilienceMetrics"]


class ResilienceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fallbacks = Counter(
            "strangler_fallbacks_total",
            "Requests replayed to the primary after the candidate failed, by reason.",
            ["route", "reason"],
            registry=registry,
        )
        self.guard_tripped = Gauge(
            "strangler_guard_tripped",
            "1 while a route's guard has rolled it back to 0 % (until reset or a route edit).",
            ["route"],
            registry=registry,
        )
        self.circuit_open = Gauge(
            "strangler_circuit_open",
            "1 while an upstream's circuit breaker is open or half-open (requests fail fast).",
            ["upstream"],
            registry=registry,
        )
        self.circuit_transitions = Counter(
            "strangler_circuit_transitions_total",
            "Circuit breaker state changes, by the state entered: open, half_open, closed.",
            ["upstream", "state"],
            registry=registry,
        )
        self.circuit_rejections = Counter(
            "strangler_circuit_rejected_total",
            "Requests not sent to an upstream because its circuit breaker was open.",
            ["upstream"],
            registry=registry,
        )
