"""The console's traffic figures, read from the proxy's own metrics (its in-memory counters).

Owns: Side and Traffic (cumulative counts per route and role: requests, 5xx answers, the duration
histogram; shadow outcomes and comparisons per route), NAMES (the samples they come from), tally() of
metric families (what a registry collects, or its samples restricted to NAMES), read() of a text
exposition (the same tally, so the two can never disagree), since() (what was
counted between two readings), Figures (requests, error share, p50/p95 of one side) and History (the
readings of the last minutes, so a page shows the last minutes rather than everything since start).
What it reads is one process's memory (or one parent's merge of its workers'): the fleet's is Grafana's.
Pure: families, texts and times in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from proxy.rollout.stats import Histogram, histogram_quantile

__all__ = ["NAMES", "Figures", "History", "Side", "Traffic", "read", "since", "tally"]

_REQUESTS = "strangler_requests_total"
_BUCKETS = "strangler_request_duration_seconds_bucket"
_SHADOW = "strangler_shadow_requests_total"
_COMPARED = "strangler_shadow_comparisons_total"
# The samples the figures are made of: a reader may ask for only these (a registry's restricted_registry,
# GET /metrics?name[]=...), and tally() ignores any other.
NAMES = (_REQUESTS, _BUCKETS, _SHADOW, _COMPARED)


@dataclass(frozen=True, slots=True)
class Side:
    """One route's one role (primary, candidate; shadow for the candidate's shadow calls), cumulative."""

    requests: float = 0.0
    errors: float = 0.0  # answers with a 5xx status
    buckets: Mapping[float, float] = field(default_factory=dict)  # le -> cumulative count


@dataclass(frozen=True, slots=True)
class Figures:
    requests: int
    errors: int
    error_share: float | None  # None without requests
    p50_s: float | None
    p95_s: float | None

    @classmethod
    def of(cls, side: Side) -> Figures:
        share = side.errors / side.requests if side.requests else None
        p50 = p95 = None
        if side.buckets and math.inf in side.buckets:
            histogram = Histogram.of(side.buckets.items())
            p50, p95 = (_finite(histogram_quantile(q, histogram)) for q in (0.5, 0.95))
        return cls(round(side.requests), round(side.errors), share, p50, p95)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Traffic:
    sides: Mapping[tuple[str, str], Side] = field(default_factory=dict)  # (route, role) -> Side
    shadow: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # route -> outcome -> count
    compared: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # route -> match|mismatch -> n

    def side(self, route: str, role: str) -> Figures:
        return Figures.of(self.sides.get((route, role), Side()))

    def match_rate(self, route: str) -> float | None:
        """Matches over compared pairs; None when nothing was compared."""
        counts = self.compared.get(route, {})
        total = counts.get("match", 0.0) + counts.get("mismatch", 0.0)
        return counts.get("match", 0.0) / total if total else None


def read(exposition: str) -> Traffic:
    """The counts of a text exposition (ValueError when it is not one)."""
    return tally(text_string_to_metric_families(exposition))


def tally(families: Iterable[Metric]) -> Traffic:
    """The counts of metric families, parsed or collected: samples not in NAMES are skipped."""
    requests: dict[tuple[str, str], list[float]] = {}
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    shadow: dict[str, dict[str, float]] = {}
    compared: dict[str, dict[str, float]] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name == _REQUESTS:
                counts = requests.setdefault((labels["route"], labels["role"]), [0.0, 0.0])
                counts[0] += sample.value
                counts[1] += sample.value if labels.get("code", "").startswith("5") else 0.0
            elif sample.name == _BUCKETS:
                into = buckets.setdefault((labels["route"], labels["role"]), {})
                le = float(labels["le"])
                into[le] = into.get(le, 0.0) + sample.value  # summed over upstreams
            elif sample.name == _SHADOW:
                _add(shadow, labels["route"], labels["outcome"], sample.value)
            elif sample.name == _COMPARED:
                _add(compared, labels["route"], labels["result"], sample.value)
    keys = set(requests) | set(buckets)
    sides = {}
    for key in keys:
        total, errors = requests.get(key, [0.0, 0.0])
        sides[key] = Side(total, errors, buckets.get(key, {}))
    return Traffic(sides, shadow, compared)


def _add(into: dict[str, dict[str, float]], route: str, name: str, value: float) -> None:
    counts = into.setdefault(route, {})
    counts[name] = counts.get(name, 0.0) + value


def since(new: Traffic, old: Traffic | None) -> Traffic:
    """What was counted between `old` and `new`; all of `new` without `old`. A count that went down (a
    process restarted in between) counts from 0 again: its new value."""
    if old is None:
        return new
    sides = {key: _side_since(side, old.sides.get(key, Side())) for key, side in new.sides.items()}
    return Traffic(sides, _minus(new.shadow, old.shadow), _minus(new.compared, old.compared))


def _side_since(new: Side, old: Side) -> Side:
    buckets = {le: _less(count, old.buckets.get(le, 0.0)) for le, count in new.buckets.items()}
    return Side(_less(new.requests, old.requests), _less(new.errors, old.errors), buckets)


def _less(new: float, old: float) -> float:
    return new - old if new >= old else new


def _minus(
    new: Mapping[str, Mapping[str, float]], old: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    return {
        route: {name: _less(value, old.get(route, {}).get(name, 0.0)) for name, value in counts.items()}
        for route, counts in new.items()
    }


class History:
    """Readings of the last `span_s` seconds (at most `limit`), oldest first."""

    def __init__(self, *, span_s: float = 300.0, limit: int = 128) -> None:
        self.span_s = span_s
        self._readings: deque[tuple[float, Traffic]] = deque(maxlen=limit)

    def add(self, at: float, traffic: Traffic) -> None:
        self._readings.append((at, traffic))
        while self._readings and self._readings[0][0] < at - self.span_s:
            self._readings.popleft()

    def window(self, at: float, current: Traffic) -> tuple[float | None, Traffic]:
        """What `current` counted since the oldest reading of the span, and how many seconds that covers;
        (None, current) when there is none: everything since the process started."""
        for when, traffic in self._readings:
            if when >= at - self.span_s and when < at:
                return at - when, since(current, traffic)
        return None, current
