"""One exposition out of several: the parent's /metrics under `serve --workers N` (admin/fanmetrics.py).

Owns the merge rules. Counters, histograms (buckets, sum, count) and summaries (count, sum) are summed
per label set: each worker counted its own requests. A gauge is merged by the rule GAUGE_RULES gives
its name (tests/unit/proxy/metrics/test_merge.py fails when a gauge the proxy exports has none); the
`_created` series the text format adds to every counter, histogram and summary take the earliest.
Summary quantiles cannot be merged and are dropped (the proxy exports none). Pure: texts in, text out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["CUMULATIVE", "GAUGE_RULES", "Rule", "cumulative", "merge", "merge_texts", "parse", "render",
           "rule_for"]  # fmt: skip

Rule = Literal["sum", "max", "min"]

# Every gauge the proxy exports (proxy/metrics/*.py), and how the workers' values make the process's.
GAUGE_RULES: Mapping[str, Rule] = {
    # What each worker holds or allows on its own: the process holds, or allows, the sum.
    "strangler_buffer_bytes": "sum",  # bytes held for requests
    "strangler_connection_limit": "sum",  # each worker caps its own client connections
    "strangler_workers": "sum",  # exported by the parent alone
    # States: 1 while any worker is in it.
    "strangler_guard_tripped": "max",
    "strangler_circuit_open": "max",
    # The same in every worker by construction (one file, one rlimit): any one of them, i.e. the max.
    # A worker whose guard tripped says 0 for its route's percent; strangler_guard_tripped says so.
    "strangler_rollout_percent": "max",
    "strangler_open_files_limit": "max",
    # The reload: failed when any worker's last one failed; the oldest successful load still serving.
    "strangler_config_last_reload_successful": "min",
    "strangler_config_last_reload_success_timestamp_seconds": "min",
}
CUMULATIVE = frozenset({"counter", "histogram", "summary"})
_COMBINE: Mapping[Rule, Callable[[list[float]], float]] = {"sum": sum, "max": max, "min": min}
_Key = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: str) -> list[Metric]:
    """The families of a text exposition (prometheus_client's own parser); ValueError when malformed."""
    return list(text_string_to_metric_families(text))


def cumulative(families: Iterable[Metric]) -> list[Metric]:
    """The families that only grow: what a replaced worker's last scrape still counts."""
    return [family for family in families if family.type in CUMULATIVE]


def rule_for(name: str, typ: str, cumulative_names: frozenset[str] = frozenset()) -> Rule | None:
    """How samples of one family combine; None for a gauge without a rule."""
    if typ in CUMULATIVE:
        return "sum"
    if name.endswith("_created") and name.removesuffix("_created") in cumulative_names:
        return "min"  # when the series started: the first worker's start
    return GAUGE_RULES.get(name)


def merge(sources: Sequence[Sequence[Metric]], *, fallback: Rule = "max") -> list[Metric]:
    """One family per name, in the order first seen; a family whose type differs from the first seen
    under its name is left out (workers of different versions). A gauge without a rule takes `fallback`
    (max: never more than one worker reports)."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[_Key, tuple[dict[str, str], list[float]]]] = {}
    for families in sources:
        for family in families:
            first = merged.get(family.name)
            if first is None:
                first = merged[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            elif first.type != family.type:
                continue
            found = values[family.name]
            for sample in family.samples:
                if family.type == "summary" and "quantile" in sample.labels:
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                found.setdefault(key, (sample.labels, []))[1].append(sample.value)
    cumulative_names = frozenset(name for name, family in merged.items() if family.type in CUMULATIVE)
    for name, family in merged.items():
        combine = _COMBINE[rule_for(name, family.type, cumulative_names) or fallback]
        family.samples = [
            Sample(sample, labels, combine(found)) for (sample, _), (labels, found) in values[name].items()
        ]
    return list(merged.values())


class _Fixed:
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(families: Sequence[Metric]) -> bytes:
    """The text exposition (format 0.0.4) of `families`, written by prometheus_client itself."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


def merge_texts(texts: Sequence[str]) -> str:
    return render(merge([parse(text) for text in texts])).decode()
