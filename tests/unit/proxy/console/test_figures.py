"""The console's traffic figures: read from the proxy's metrics or its exposition, taken over the last
minutes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from proxy.console.figures import NAMES, History, Traffic, read, since, tally
from proxy.metrics import ProxyMetrics


def exposition(metrics: ProxyMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_requests_errors_and_latency_per_side_come_from_the_counters() -> None:
    metrics = ProxyMetrics(CollectorRegistry())
    for _ in range(8):
        metrics.observe_request("images", "legacy", "primary", "GET", 200, 0.02)
    metrics.observe_request("images", "legacy", "primary", "POST", 503, 3.0)
    metrics.observe_request("images", "new", "candidate", "GET", 200, 0.2)
    metrics.observe_request("images", "new2", "candidate", "GET", 500, 0.2)  # another upstream, same side

    traffic = read(exposition(metrics))
    primary, candidate = traffic.side("images", "primary"), traffic.side("images", "candidate")

    assert (primary.requests, primary.errors) == (9, 1)
    assert primary.error_share == pytest.approx(1 / 9)
    assert primary.p50_s is not None
    assert 0.01 < primary.p50_s <= 0.025
    assert primary.p95_s is not None
    assert 2.5 < primary.p95_s <= 5.0
    assert (candidate.requests, candidate.errors) == (2, 1)
    assert traffic.side("nobody", "primary").requests == 0
    assert traffic.side("nobody", "primary").error_share is None


def test_shadow_outcomes_and_the_match_rate() -> None:
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.init_shadow(["images"])
    for real in ([], [], ["status"]):
        metrics.shadow_outcome("images", "compared")
        metrics.shadow_compared("images", real=real, noise=False, latency_ratio=1.0)
    traffic = read(exposition(metrics))
    assert traffic.shadow["images"]["compared"] == 3
    assert traffic.match_rate("images") == pytest.approx(2 / 3)
    assert Traffic().match_rate("images") is None


def test_collected_families_and_the_parsed_exposition_give_the_same_figures() -> None:
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.init_shadow(["images"])
    for i in range(40):
        metrics.observe_request("images", "legacy", "primary", "GET", 200 if i % 7 else 503, i / 97)
        metrics.observe_request(f"r{i % 5}", "new" if i % 2 else "new2", "candidate", "POST", 200, i / 13)
    metrics.observe_shadow_call("images", "new", 0.3)
    metrics.shadow_outcome("images", "compared")
    metrics.shadow_compared("images", real=["status"], noise=False, latency_ratio=1.5)

    collected = tally(metrics.registry.restricted_registry(NAMES).collect())

    assert collected == read(exposition(metrics)) == tally(metrics.registry.collect())
    assert collected.side("images", "primary").requests == 40
    assert collected.side("r1", "candidate").p95_s is not None


def test_the_window_counts_only_what_happened_since_its_oldest_reading() -> None:
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.observe_request("images", "legacy", "primary", "GET", 200, 0.02)
    history = History(span_s=300)
    history.add(100.0, read(exposition(metrics)))
    for _ in range(4):
        metrics.observe_request("images", "legacy", "primary", "GET", 500, 0.02)

    span, window = history.window(160.0, read(exposition(metrics)))
    assert span == 60.0
    assert (window.side("images", "primary").requests, window.side("images", "primary").errors) == (4, 4)

    span, everything = history.window(500.0, read(exposition(metrics)))  # the reading is too old now
    assert span is None
    assert everything.side("images", "primary").requests == 5


def test_a_count_that_went_down_counts_from_zero_again() -> None:
    old = read('strangler_requests_total{route="r",upstream="u",role="primary",method="GET",code="200"} 10\n')
    new = read('strangler_requests_total{route="r",upstream="u",role="primary",method="GET",code="200"} 3\n')
    assert since(new, old).side("r", "primary").requests == 3
    assert since(new, None).side("r", "primary").requests == 3
