"""judge(): the verdict of one interval, check by check, from two sides' figures."""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.progressive import Progressive
from proxy.rollout.analysis import Figures, judge
from proxy.rollout.stats import Histogram

BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


def policy(**checks: Any) -> Progressive:
    return Progressive.model_validate({"steps": [1, 5, 100], "min_requests": 50, "checks": checks})


def latency(*per_bucket: int) -> Histogram:
    return Histogram(BOUNDS, tuple(float(c) for c in accumulate(per_bucket)))


FAST = latency(0, 10, 60, 25, 5, 0, 0, 0)  # 100 requests, p95 in the 1 s bucket
SLOW = latency(0, 0, 5, 20, 40, 30, 5, 0)  # 100 requests, p95 in the 5-10 s bucket


def side(requests: float = 100, errors: float = 0, **more: Any) -> Figures:
    return Figures(requests=requests, errors=errors, **more)


ERRORS = policy(error_rate={"max_increase": 0.01})


def test_a_tripped_guard_fails_the_analysis_whatever_the_figures() -> None:
    verdict = judge(ERRORS, side(), side(guard_tripped=True))
    assert verdict.result == "failed"
    assert verdict.checks == ()
    assert "guard tripped" in verdict.reason


@pytest.mark.parametrize(("primary", "candidate"), [(49, 500), (500, 49), (0, 0)])
def test_too_little_traffic_on_either_side_is_inconclusive_and_runs_no_check(
    primary: int, candidate: int
) -> None:
    verdict = judge(ERRORS, side(primary), side(candidate, errors=candidate))
    assert verdict.result == "inconclusive"
    assert verdict.checks == ()
    assert verdict.reason == (f"too little traffic: primary {primary}, candidate {candidate} requests "
                              "(min_requests 50 each)")  # fmt: skip


def test_a_handful_of_errors_among_few_requests_does_not_fail_a_good_candidate() -> None:
    # 2 of 50 against 0 of 50: 4 points above the primary, but p = 0.077
    verdict = judge(ERRORS, side(50, 0), side(50, 2))
    check = verdict.checks[0]
    assert verdict.result == "passed"
    assert check.result == "passed"
    assert check.p_value == pytest.approx(0.0766, abs=1e-3)
    assert check.observed == {"primary_rate": 0.0, "candidate_rate": 0.04, "increase": 0.04}
    assert check.reason == ("candidate 5xx 4.00% vs primary 0.00%: +4.00 points is above +1, not significant "
                            "(p=0.0766 >= 0.05)")  # fmt: skip


def test_a_clear_error_regression_is_caught_at_low_traffic() -> None:
    verdict = judge(ERRORS, side(60, 0), side(60, 10))
    assert verdict.result == "failed"
    assert verdict.checks[0].p_value is not None
    assert verdict.checks[0].p_value < 0.001
    assert verdict.reason.startswith("error_rate: candidate 5xx 16.67% vs primary 0.00%: +16.67 points")


def test_a_significant_difference_within_the_allowed_increase_passes() -> None:
    verdict = judge(ERRORS, side(100_000, 1000), side(100_000, 1500))
    check = verdict.checks[0]
    assert check.p_value is not None
    assert check.p_value < 1e-6
    assert check.result == "passed"
    assert check.reason == "candidate 5xx 1.50% vs primary 1.00%: +0.50 points, within +1"


LATENCY = policy(latency_p95={"max_ratio": 1.25})


def test_a_clearly_slower_candidate_fails_the_latency_check() -> None:
    verdict = judge(LATENCY, side(latency=FAST), side(latency=SLOW))
    check = verdict.checks[0]
    assert verdict.result == "failed"
    assert check.observed["primary_p95"] == pytest.approx(1.0)
    assert check.observed["candidate_p95"] == pytest.approx(5.0)  # rank 95 is the last of the 2.5-5 s bucket
    assert check.p_value is not None
    assert check.p_value < 1e-10
    assert check.threshold == 1.25


def test_a_candidate_as_fast_as_the_primary_passes() -> None:
    verdict = judge(LATENCY, side(latency=FAST), side(latency=FAST))
    assert verdict.result == "passed"
    assert verdict.checks[0].observed["ratio"] == 1.0


def test_a_slower_p95_from_few_observations_is_not_significant() -> None:
    few_fast = latency(0, 1, 1, 1, 0, 0, 0, 0)  # p95 0.925 s
    few_slow = latency(0, 0, 1, 1, 1, 0, 0, 0)  # p95 2.275 s
    check = judge(LATENCY, side(latency=few_fast), side(latency=few_slow)).checks[0]
    assert check.observed["ratio"] == pytest.approx(2.275 / 0.925)
    assert check.result == "passed"
    assert "not significant" in check.reason


@pytest.mark.parametrize(
    ("primary", "candidate", "reason"),
    [(None, FAST, "no request durations for the primary in the interval"),
     (FAST, latency(0, 0, 0, 0, 0, 0, 0, 0), "no request durations for the candidate in the interval"),
     (FAST, Histogram((1.0, math.inf), (3.0, 5.0)), "different buckets"),
     (Histogram((math.inf,), (5.0,)), Histogram((math.inf,), (5.0,)), "only the +Inf bucket")],
)  # fmt: skip
def test_latency_without_comparable_histograms_is_inconclusive(
    primary: Histogram | None, candidate: Histogram, reason: str
) -> None:
    verdict = judge(LATENCY, side(latency=primary), side(latency=candidate))
    assert verdict.result == "inconclusive"
    assert reason in verdict.checks[0].reason


def test_a_primary_p95_of_zero_makes_any_slower_candidate_infinitely_slower() -> None:
    zero = Histogram((0.0, 1.0, math.inf), (100.0, 100.0, 100.0))
    slower = Histogram((0.0, 1.0, math.inf), (0.0, 100.0, 100.0))
    assert judge(LATENCY, side(latency=zero), side(latency=slower)).checks[0].observed["ratio"] == math.inf
    assert judge(LATENCY, side(latency=zero), side(latency=zero)).checks[0].observed["ratio"] == 1.0


SHADOW = policy(shadow_mismatch_rate={"max": 0.02})


@pytest.mark.parametrize(
    ("compared", "mismatched", "result"),
    [(20, 1, "passed"), (1000, 25, "passed"), (100, 10, "failed"), (3, 3, "failed"), (500, 0, "passed")],
)
def test_the_mismatch_rate_fails_only_when_above_the_max_and_significant(
    compared: int, mismatched: int, result: str
) -> None:
    verdict = judge(SHADOW, side(), side(shadow_compared=compared, shadow_mismatched=mismatched))
    assert verdict.checks[0].result == result
    assert verdict.checks[0].observed["rate"] == mismatched / compared


@pytest.mark.parametrize(("compared", "mismatched"), [(None, None), (0, 0), (10, None)])
def test_no_shadow_comparisons_are_inconclusive(compared: int | None, mismatched: int | None) -> None:
    verdict = judge(SHADOW, side(), side(shadow_compared=compared, shadow_mismatched=mismatched))
    assert verdict.result == "inconclusive"
    assert verdict.reason.startswith("shadow_mismatch_rate: no shadow comparisons in the interval")


def test_more_mismatches_than_comparisons_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="shadow_mismatched"):
        judge(SHADOW, side(), side(shadow_compared=3, shadow_mismatched=4))


CUSTOM = policy(custom=[{"name": "depth", "query": "max(q)", "max": 30}])


@pytest.mark.parametrize(
    ("value", "result"),
    [(30.0, "passed"), (30.5, "failed"), (None, "inconclusive"), (math.nan, "inconclusive")],
)
def test_a_custom_check_fails_above_its_max_without_a_test(value: float | None, result: str) -> None:
    verdict = judge(CUSTOM, side(), side(custom={"depth": value}))
    check = verdict.checks[0]
    assert (check.name, check.result, check.p_value, check.threshold) == ("depth", result, None, 30.0)


def test_a_custom_value_missing_from_the_figures_is_inconclusive() -> None:
    assert judge(CUSTOM, side(), side()).checks[0].reason == "the query returned no number"


EVERYTHING = policy(
    error_rate={"max_increase": 0.01}, latency_p95={"max_ratio": 1.25}, shadow_mismatch_rate={"max": 0.02},
    custom=[{"name": "depth", "query": "max(q)", "max": 30}, {"name": "cost", "query": "sum(c)", "max": 5}],
)  # fmt: skip


def test_every_check_runs_in_order_and_all_passing_is_a_pass() -> None:
    candidate = side(latency=FAST, shadow_compared=100, shadow_mismatched=0, custom={"depth": 1, "cost": 2})
    verdict = judge(EVERYTHING, side(latency=FAST), candidate)
    names = [c.name for c in verdict.checks]
    assert names == ["error_rate", "latency_p95", "shadow_mismatch_rate", "depth", "cost"]
    assert verdict.result == "passed"
    assert verdict.reason == "all 5 checks passed"


def test_a_failed_check_outweighs_an_inconclusive_one() -> None:
    candidate = side(errors=30, latency=FAST, custom={"depth": 1})  # no shadow figures, no cost
    verdict = judge(EVERYTHING, side(latency=FAST), candidate)
    results = [c.result for c in verdict.checks]
    assert results == ["failed", "passed", "inconclusive", "passed", "inconclusive"]
    assert verdict.result == "failed"
    assert verdict.reason.startswith("error_rate: ")


def test_an_inconclusive_check_keeps_the_analysis_from_passing() -> None:
    candidate = side(latency=FAST, shadow_compared=100, shadow_mismatched=0, custom={"depth": 1})
    verdict = judge(EVERYTHING, side(latency=FAST), candidate)
    assert verdict.result == "inconclusive"
    assert verdict.reason == "cost: the query returned no number"


counts = st.integers(0, 2000)
buckets = st.lists(st.integers(0, 200), min_size=len(BOUNDS), max_size=len(BOUNDS))


@given(
    requests=st.tuples(counts, counts), errors=st.tuples(counts, counts), primary=buckets, candidate=buckets,
    compared=counts, mismatched=counts, alpha=st.sampled_from([0.001, 0.05, 0.5]),
)  # fmt: skip
def test_a_check_fails_only_beyond_its_threshold_and_below_the_significance_level(
    requests: tuple[int, int], errors: tuple[int, int], primary: list[int], candidate: list[int],
    compared: int, mismatched: int, alpha: float,
) -> None:  # fmt: skip
    rules = EVERYTHING.model_copy(update={"significance": alpha, "min_requests": 1})
    verdict = judge(
        rules,
        side(requests[0], min(errors[0], requests[0]), latency=latency(*primary)),
        side(requests[1], min(errors[1], requests[1]), latency=latency(*candidate), shadow_compared=compared,
             shadow_mismatched=min(mismatched, compared), custom={"depth": 1.0, "cost": 1.0}),
    )  # fmt: skip
    for check in verdict.checks:
        if check.result == "failed" and check.p_value is not None:
            assert check.p_value < alpha
            beyond = {"error_rate": "increase", "latency_p95": "ratio", "shadow_mismatch_rate": "rate"}
            assert check.observed[beyond[check.name]] > check.threshold
    assert (verdict.result == "failed") == any(c.result == "failed" for c in verdict.checks)
