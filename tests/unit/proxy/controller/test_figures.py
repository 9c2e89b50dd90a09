"""One interval's figures from the fleet's counters: two instant queries, differences summed over replicas."""

from __future__ import annotations

import math
from typing import Any

import pytest

from proxy.config.progressive import Progressive
from proxy.controller.figures import (
    Unusable,
    buckets_query,
    errors_query,
    guard_query,
    interval_figures,
    requests_query,
    shadow_query,
)
from proxy.controller.prometheus import Prometheus, PrometheusError
from proxy.rollout.stats import Histogram
from tests.unit.proxy.controller.fake_prometheus import FakePrometheus, Side, fleet, replica

END, INTERVAL = 10_000.0, 30.0
START = END - INTERVAL
BUCKETS = (("0.1", 0.0), ("0.25", 0.0), ("+Inf", 0.0))


def plan(**checks: Any) -> Progressive:
    checks = checks or {"error_rate": {"max_increase": 0.01}}
    return Progressive.model_validate({"steps": [10, 100], "interval_s": INTERVAL, "checks": checks})


def buckets(*cumulative: float) -> tuple[tuple[str, float], ...]:
    return tuple((le, count) for (le, _), count in zip(BUCKETS, cumulative, strict=True))


async def test_each_side_is_the_sum_over_replicas_of_end_minus_start(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fleet(fake, "images", start=START, end=END, sides={
        "primary": [Side(100, 1), Side(60, 2)], "candidate": [Side(30, 3), Side(12, 0)],
    })  # fmt: skip

    primary, candidate = await interval_figures(prometheus, "images", plan(), now=END)

    assert (primary.requests, primary.errors) == (160, 3)
    assert (candidate.requests, candidate.errors) == (42, 3)
    assert candidate.guard_tripped is False
    asked = {query for query, _ in fake.asked}
    assert requests_query("images", "candidate") in asked
    assert {at for _, at in fake.asked} == {START, END}


def test_the_queries_are_per_replica_sums_of_the_proxys_families_for_one_route_and_side() -> None:
    assert requests_query("images", "candidate") == (
        'sum by (job, instance) (strangler_requests_total{route="images", role="candidate"})'
    )
    assert errors_query("images", "primary") == (
        'sum by (job, instance) (strangler_requests_total{route="images", role="primary", code=~"5.."})'
    )
    assert buckets_query("images", "primary") == (
        "sum by (job, instance, le) "
        '(strangler_request_duration_seconds_bucket{route="images", role="primary"})'
    )
    assert shadow_query("images") == (
        'sum by (job, instance, result) (strangler_shadow_comparisons_total{route="images"})'
    )
    assert guard_query("images") == 'max(strangler_guard_tripped{route="images"})'


async def test_a_series_first_seen_in_the_interval_counts_from_zero_and_one_gone_is_left_out(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    query = requests_query("images", "candidate")
    fake.vector(query, [(replica("old"), 500.0), (replica("stopped"), 70.0)], at=START)
    fake.vector(query, [(replica("old"), 520.0), (replica("new"), 9.0)], at=END)
    fake.vector(requests_query("images", "primary"), [(replica("old"), 5.0)], at=END)

    primary, candidate = await interval_figures(prometheus, "images", plan(), now=END)

    assert candidate.requests == 20 + 9
    assert primary.requests == 5


async def test_a_counter_that_went_down_makes_the_interval_unusable_and_names_the_replica(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    query = requests_query("images", "primary")
    fake.vector(query, [(replica("10.0.0.7:8089"), 900.0)], at=START)
    fake.vector(query, [(replica("10.0.0.7:8089"), 40.0)], at=END)  # restarted: counting from 0 again

    with pytest.raises(Unusable, match=r"the primary's requests: .* from 900 to 40 on 10\.0\.0\.7:8089"):
        await interval_figures(prometheus, "images", plan(), now=END)


async def test_latency_is_the_fleets_histogram_bucket_by_bucket(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fleet(fake, "images", start=START, end=END, sides={
        "primary": [Side(10, buckets=buckets(8, 10, 10)), Side(10, buckets=buckets(2, 9, 10))],
        "candidate": [Side(10, buckets=buckets(0, 4, 10))],
    })  # fmt: skip

    primary, candidate = await interval_figures(prometheus, "images", plan(latency_p95={"max_ratio": 1.5}),
                                                now=END)  # fmt: skip

    assert primary.latency == Histogram((0.1, 0.25, math.inf), (10.0, 19.0, 20.0))
    assert candidate.latency == Histogram((0.1, 0.25, math.inf), (0.0, 4.0, 10.0))
    assert primary.errors == 0  # no error_rate check: the 5xx are not even asked
    assert not any(query == errors_query("images", "primary") for query, _ in fake.asked)


async def test_no_duration_at_all_gives_no_histogram(fake: FakePrometheus, prometheus: Prometheus) -> None:
    fleet(fake, "images", start=START, end=END, sides={"primary": [Side(5)], "candidate": [Side(5)]})

    primary, _ = await interval_figures(prometheus, "images", plan(latency_p95={"max_ratio": 1.5}), now=END)

    assert primary.latency is None


async def test_shadow_comparisons_guard_and_custom_values_are_route_wide_on_the_candidate(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fleet(fake, "images", start=START, end=END, sides={"primary": [Side(50)], "candidate": [Side(50)]})
    shadow = shadow_query("images")
    match, mismatch = {**replica("a"), "result": "match"}, {**replica("a"), "result": "mismatch"}
    fake.vector(shadow, [(match, 100), (mismatch, 4)], at=START)
    fake.vector(shadow, [(match, 190), (mismatch, 6)], at=END)
    fake.vector(guard_query("images"), [({}, 1.0)])
    fake.vector("max(imageservice_in_flight)", [({}, 3.0)], at=END)
    policy = plan(error_rate={"max_increase": 0.01}, shadow_mismatch_rate={"max": 0.05},
                  custom=[{"name": "queue", "query": "max(imageservice_in_flight)", "max": 30},
                          {"name": "empty", "query": "absent_metric", "max": 1}])  # fmt: skip

    primary, candidate = await interval_figures(prometheus, "images", policy, now=END)

    assert (candidate.shadow_compared, candidate.shadow_mismatched) == (92, 2)
    assert candidate.guard_tripped
    assert candidate.custom == {"queue": 3.0, "empty": None}
    assert primary.shadow_compared is None
    assert not primary.custom


async def test_a_custom_query_with_many_series_is_an_error_naming_the_check(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fake.vector("up", [({"instance": "a"}, 1.0), ({"instance": "b"}, 1.0)])
    policy = plan(custom=[{"name": "alive", "query": "up", "max": 1}])

    with pytest.raises(PrometheusError, match="custom check 'alive': the query gave 2 series, not one"):
        await interval_figures(prometheus, "images", policy, now=END)
