"""The parent's /metrics under --workers N: the workers' expositions merged, text in, text out."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import ProxyMetrics, ResilienceMetrics, WorkersMetrics
from proxy.metrics.merge import GAUGE_RULES, cumulative, merge, merge_texts, parse, render, rule_for
from tests.unit.proxy.test_layering import imports_of, modules

GAUGE_KINDS = ("gauge", "info", "stateset", "unknown")


def worker(requests: dict[str, int], *, tripped: int = 0, held: float = 0, reload_ok: int = 1) -> str:
    """The exposition of one worker: a few families of each kind the proxy has."""
    registry = CollectorRegistry()
    counter = Counter("strangler_requests_total", "Requests.", ["route", "code"], registry=registry)
    for route, count in requests.items():
        counter.labels(route, "200").inc(count)
    duration = Histogram("strangler_request_duration_seconds", "Time.", ["route"], buckets=(0.1, 1.0),
                         registry=registry)  # fmt: skip
    for route, count in requests.items():
        for _ in range(count):
            duration.labels(route).observe(0.5)
    Gauge("strangler_guard_tripped", "Tripped.", ["route"], registry=registry).labels("images").set(tripped)
    Gauge("strangler_buffer_bytes", "Held.", ["kind"], registry=registry).labels("memory").set(held)
    Gauge("strangler_config_last_reload_successful", "Ok.", registry=registry).set(reload_ok)
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def test_counters_and_histograms_are_summed_per_label_set_and_a_series_of_one_worker_is_kept() -> None:
    merged = merge_texts([worker({"images": 3, "default": 1}), worker({"images": 4})])

    assert value(merged, "strangler_requests_total", route="images", code="200") == 7
    assert value(merged, "strangler_requests_total", route="default", code="200") == 1
    assert value(merged, "strangler_request_duration_seconds_count", route="images") == 7
    assert value(merged, "strangler_request_duration_seconds_sum", route="images") == 3.5
    assert value(merged, "strangler_request_duration_seconds_bucket", route="images", le="0.1") == 0
    assert value(merged, "strangler_request_duration_seconds_bucket", route="images", le="1.0") == 7
    assert value(merged, "strangler_request_duration_seconds_bucket", route="images", le="+Inf") == 7


def test_gauges_follow_their_rule_sum_for_what_is_held_max_for_states_min_for_the_last_reload() -> None:
    merged = merge_texts([
        worker({}, tripped=0, held=100, reload_ok=1),
        worker({}, tripped=1, held=20, reload_ok=0),
    ])  # fmt: skip

    assert value(merged, "strangler_buffer_bytes", kind="memory") == 120
    assert value(merged, "strangler_guard_tripped", route="images") == 1
    assert value(merged, "strangler_config_last_reload_successful") == 0


def test_the_created_series_take_the_earliest_and_summary_quantiles_are_dropped() -> None:
    first = "# TYPE x_total counter\nx_total 1\n# TYPE x_created gauge\nx_created 200\n"
    second = "# TYPE x_total counter\nx_total 2\n# TYPE x_created gauge\nx_created 100\n"
    summary = '# TYPE s summary\ns{quantile="0.5"} 3\ns_count 1\ns_sum 3\n'

    merged = merge_texts([first + summary, second + summary])

    assert value(merged, "x_total") == 3
    assert value(merged, "x_created") == 100
    assert value(merged, "s_count") == 2
    assert ("s", (("quantile", "0.5"),)) not in samples(merged)


def test_a_family_of_a_type_other_than_the_first_seen_is_left_out_a_gauge_without_rule_takes_max() -> None:
    gauge, counter = "# TYPE odd gauge\nodd {}\n", "# TYPE odd_total counter\nodd_total 5\n"

    merged = merge_texts([gauge.format(3), counter, gauge.format(7)])

    assert samples(merged) == {("odd", ()): 7}


def test_the_output_parses_back_to_the_same_families_in_the_first_workers_order() -> None:
    one = worker({"images": 1}, held=5)
    merged = merge_texts([one, one])

    assert [f.name for f in parse(merged)] == [f.name for f in parse(one)]
    summed = {s.name for f in parse(one) if f.type == "counter" or f.type == "histogram" for s in f.samples}
    summed.add("strangler_buffer_bytes")
    assert samples(merged) == {key: v * 2 if key[0] in summed else v for key, v in samples(one).items()}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_merged_exposition_of_the_real_families() -> None:
    texts = []
    for n in range(2):
        metrics = ProxyMetrics(CollectorRegistry())
        metrics.observe_request("images", "new", "candidate", "GET", 200, 0.01 * (n + 1))
        metrics.shadow_compared("images", real=["status"], noise=True, latency_ratio=1.5)
        texts.append(generate_latest(metrics.registry).decode())
    texts.append(generate_latest(WorkersMetrics(CollectorRegistry()).registry).decode())

    result = subprocess.run(["promtool", "check", "metrics"], input=merge_texts(texts), capture_output=True,
                            text=True, timeout=30, check=False)  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr


def test_what_a_replaced_worker_leaves_is_only_what_grows() -> None:
    families = parse(worker({"images": 2}, tripped=1))

    kept = cumulative(families)

    assert {f.name for f in kept} == {"strangler_requests", "strangler_request_duration_seconds"}
    assert value(render(merge([kept, parse(worker({"images": 1}))])).decode(),
                 "strangler_requests_total", route="images", code="200") == 3  # fmt: skip


def _exported_gauges() -> set[str]:
    """Every gauge family a worker or the parent exports, from their registries."""
    registry = CollectorRegistry()
    ProxyMetrics(registry)
    ResilienceMetrics(registry)
    parent = WorkersMetrics(CollectorRegistry())
    families = [*registry.collect(), *parent.registry.collect()]
    return {family.name for family in families if family.type in GAUGE_KINDS}


def _served_modules() -> list[Path]:
    """The modules a worker or the parent of --workers N imports (the import graph from proxy.server and
    proxy.workers): the gauges declared there are the ones the parent merges. The rollout controller is
    another process with its own listener."""
    paths, todo, seen = modules(), ["server", "workers"], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in paths:
            continue
        seen.add(name)
        for target in imports_of(paths[name]):
            if target.startswith("proxy."):
                parts = target.removeprefix("proxy.").split(".")
                # a module, or a package's __init__; importing either runs every package __init__ above it
                todo.extend([".".join(parts), ".".join([*parts, "__init__"])])
                todo.extend(".".join([*parts[:i], "__init__"]) for i in range(1, len(parts)))
    return [paths[name] for name in sorted(seen)]


def _declared_gauges() -> set[str]:
    """The names of every Gauge/GaugeMetricFamily/Info/Enum made in a module the serving processes import
    (a literal, or a class's NAME): a gauge wired outside ProxyMetrics is caught too."""
    found = set()
    for path in _served_modules():
        tree = ast.parse(path.read_text(), str(path))
        names = {n.targets[0].id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Constant)}  # fmt: skip
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            callee = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if callee in ("Gauge", "GaugeMetricFamily", "Info", "Enum"):
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    found.add(str(first.value))
                elif isinstance(first, ast.Attribute | ast.Name):
                    found.add(str(names.get(getattr(first, "attr", getattr(first, "id", "")), "?")))
    return found


def test_every_gauge_the_proxy_exports_has_a_merge_rule() -> None:
    exported = _exported_gauges() | _declared_gauges()
    assert "strangler_rollout_percent" in exported  # the scrape-time collector is seen too

    missing = sorted(name for name in exported if rule_for(name, "gauge") is None)

    assert not missing, f"add each to proxy/metrics/merge.py GAUGE_RULES (sum, max or min): {missing}"
    assert not set(GAUGE_RULES) - exported, "a rule for a gauge nobody exports: remove it"
