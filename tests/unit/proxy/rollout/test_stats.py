"""The statistics of the canary judgement against numbers computed elsewhere: by hand, by Prometheus's own
test suite (promql/testdata/histograms.test) and by scipy 1.17 (mannwhitneyu, norm.sf, binom.sf, run once
in a throwaway script; scipy is not a dependency)."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.rollout.stats import Histogram, binomial_tail, histogram_quantile, mann_whitney, two_proportions

INF = math.inf


def binned(*counts: float, bounds: tuple[float, ...] | None = None) -> Histogram:
    """A histogram from per-bucket counts; bounds 1, 2, 3, ... and +Inf unless given."""
    bounds = bounds or (*(float(i + 1) for i in range(len(counts) - 1)), INF)
    return Histogram(bounds, tuple(accumulate(counts)))


# -- histogram_quantile: Prometheus's own test cases --------------------------------------------------------
POSITIVE = Histogram((0.1, 0.2, 1.0, INF), (50, 70, 110, 120))
NEGATIVE = Histogram((-0.2, -0.1, 0.3, INF), (10, 20, 20, 30))


@pytest.mark.parametrize(
    ("q", "positive", "negative"),
    [(-0.1, -INF, -INF), (1.01, INF, INF), (0, 0, -0.2), (1, 1, 0.3), (0.2, 0.048, -0.2), (0.5, 0.15, -0.15),
     (0.8, 0.72, 0.3)],
)  # fmt: skip
def test_quantiles_are_the_ones_prometheus_computes(q: float, positive: float, negative: float) -> None:
    assert histogram_quantile(q, POSITIVE) == pytest.approx(positive)
    assert histogram_quantile(q, NEGATIVE) == pytest.approx(negative)


def test_a_falling_bucket_count_is_raised_to_the_one_before_as_prometheus_does() -> None:
    nonmonotonic = Histogram((0.1, 1, 10, 100, 1000, INF), (10, 90, 80, 80, 90, 90))
    assert histogram_quantile(0.99, nonmonotonic) == pytest.approx(0.989875)


def test_series_of_the_same_bound_written_differently_are_added_up() -> None:
    mixed = Histogram.of([(0.1, 10), (0.2, 10), (float("2e-1"), 10), (float("2.0e-1"), 10), (INF, 40)])
    assert mixed.bounds == (0.1, 0.2, INF)
    assert histogram_quantile(0.5, mixed) == pytest.approx(0.15)
    assert histogram_quantile(0.75, mixed) == pytest.approx(0.2)
    assert histogram_quantile(1, mixed) == pytest.approx(0.2)


def test_a_rank_in_the_inf_bucket_gives_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.95, binned(10, 0, 90)) == 2.0


def test_no_quantile_without_observations_or_finite_buckets() -> None:
    assert math.isnan(histogram_quantile(0.95, binned(0, 0, 0)))
    assert math.isnan(histogram_quantile(0.95, Histogram((INF,), (5,))))
    assert math.isnan(histogram_quantile(math.nan, binned(1, 1)))


@pytest.mark.parametrize(
    ("bounds", "counts", "message"),
    [((1.0, 2.0), (1, 2), r"last bucket must be \+Inf"), ((2.0, 1.0, INF), (1, 2, 3), "must increase"),
     ((1.0, INF), (1,), "one cumulative count per"), ((1.0, INF), (-1, 2), "not negative"),
     ((math.nan, INF), (1, 2), "must increase"), ((1.0, INF), (1, math.nan), "finite")],
)  # fmt: skip
def test_a_malformed_histogram_is_refused(
    bounds: tuple[float, ...], counts: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Histogram(bounds, counts)


@given(
    counts=st.lists(st.integers(0, 1000), min_size=2, max_size=8).filter(lambda c: sum(c[:-1]) > 0),
    q=st.floats(0, 1),
)
def test_a_quantile_lies_in_the_bucket_that_holds_its_rank(counts: list[int], q: float) -> None:
    histogram = binned(*counts)
    value = histogram_quantile(q, histogram)
    rank = q * histogram.total
    if rank == 0 and counts[0] == 0:
        assert math.isnan(value)  # Prometheus divides 0 by 0 there
        return
    index = next((i for i, c in enumerate(histogram.cumulative) if c >= rank), len(counts) - 1)
    if index == len(counts) - 1:
        assert value == histogram.bounds[-2]
    else:
        low = histogram.bounds[index - 1] if index else 0.0
        assert low - 1e-9 <= value <= histogram.bounds[index] + 1e-9


# -- the two-proportion z-test -------------------------------------------------------------------------------
def test_the_two_proportion_test_matches_a_hand_computation() -> None:
    # 10/100 against 3/100: pooled 13/200 = 0.065; se = sqrt(0.065 * 0.935 * (1/100 + 1/100)) = 0.034864;
    # z = 0.07 / 0.034864 = 2.00777; P(Z >= z) = 0.022332 (scipy: norm.sf -> 0.022332247756385662).
    assert two_proportions(10, 100, 3, 100) == pytest.approx(0.022332247756385662, rel=1e-12)
    assert two_proportions(5, 1000, 1, 1000) == pytest.approx(0.050977565026802764, rel=1e-12)
    assert two_proportions(3, 60, 1, 900) == pytest.approx(6.268922281640603e-09, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "n", "b", "m"), [(0, 50, 0, 50), (50, 50, 20, 20), (0, 0, 3, 10), (2, 10, 0, 0)]
)
def test_no_variation_or_an_empty_side_is_no_evidence(a: float, n: float, b: float, m: float) -> None:
    assert two_proportions(a, n, b, m) == 1.0


def test_a_candidate_with_fewer_errors_is_far_from_significant() -> None:
    assert two_proportions(1, 100, 10, 100) > 0.99


@pytest.mark.parametrize(("a", "n"), [(-1, 10), (11, 10), (math.nan, 10), (1, math.inf)])
def test_impossible_counts_are_refused(a: float, n: float) -> None:
    with pytest.raises(ValueError, match="counts must be finite"):
        two_proportions(a, n, 0, 10)


@given(a=st.integers(0, 500), n=st.integers(1, 500), b=st.integers(0, 500), m=st.integers(1, 500))
def test_the_two_one_sided_p_values_add_up_to_one(a: int, n: int, b: int, m: int) -> None:
    a, b = min(a, n), min(b, m)
    forward, backward = two_proportions(a, n, b, m), two_proportions(b, m, a, n)
    if forward != 1.0 or backward != 1.0:  # both 1.0: no variation at all
        assert forward + backward == pytest.approx(1.0)


# -- Mann-Whitney U on binned samples ------------------------------------------------------------------------
def test_mann_whitney_matches_a_hand_computation_with_ties() -> None:
    # candidate one observation in each of buckets 1, 2, 3; primary two in bucket 1, one in bucket 2.
    # U = sum over candidate observations of (primary below + half the primary tied):
    #   1 * (0 + 2/2) + 1 * (2 + 1/2) + 1 * (3 + 0) = 6.5; mean 3 * 3 / 2 = 4.5;
    # ties per bucket 3, 2, 1: sum(t^3 - t) = 24 + 6 + 0 = 30; var = 9/12 * (7 - 30 / (6 * 5)) = 4.5;
    # z = (6.5 - 4.5 - 0.5) / sqrt(4.5) = 0.70711; p = P(Z >= z) = 0.23975.
    result = mann_whitney(binned(1, 1, 1, 0), binned(2, 1, 0, 0))
    assert result.u == 6.5
    assert result.z == pytest.approx(1.5 / math.sqrt(4.5))
    assert result.p_value == pytest.approx(0.23975006109347669, rel=1e-12)  # scipy, expanded samples


@pytest.mark.parametrize(
    ("candidate", "primary", "u", "p"),
    [
        ((3, 9, 25, 8, 5), (10, 20, 15, 4, 1), 1756.0, 0.00012709745906350618),
        ((10, 20, 15, 4, 1), (3, 9, 25, 8, 5), 744.0, 0.9998764430018849),
        ((0, 5, 45, 30, 15, 4, 1, 0), (0, 20, 50, 20, 8, 2, 0, 0), 6381.0, 0.00015391131485279044),
        ((0, 0, 0, 0, 60), (60, 0, 0, 0, 0), 3600.0, 5.413917156179039e-28),
    ],
)
def test_mann_whitney_matches_scipy_on_the_expanded_samples(
    candidate: tuple[int, ...], primary: tuple[int, ...], u: float, p: float
) -> None:
    result = mann_whitney(binned(*candidate), binned(*primary))
    assert result.u == u
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_no_ranking_is_possible_with_an_empty_side_or_everything_in_one_bucket() -> None:
    assert mann_whitney(binned(0, 0, 0), binned(5, 5, 5)).p_value == 1.0
    assert mann_whitney(binned(0, 7, 0), binned(0, 9, 0)).p_value == 1.0


def test_histograms_with_different_buckets_cannot_be_ranked_together() -> None:
    with pytest.raises(ValueError, match="same bucket bounds"):
        mann_whitney(binned(1, 1), binned(1, 1, 1))


samples = st.lists(st.integers(0, 40), min_size=4, max_size=4)


@given(candidate=samples, primary=samples)
def test_u_counts_every_pair_once_and_the_two_one_sided_tests_never_both_reject(
    candidate: list[int], primary: list[int]
) -> None:
    forward = mann_whitney(binned(*candidate), binned(*primary))
    backward = mann_whitney(binned(*primary), binned(*candidate))
    assert forward.u + backward.u == sum(candidate) * sum(primary)
    assert 0 <= forward.p_value <= 1
    assert forward.p_value + backward.p_value >= 1 - 1e-12  # the continuity correction errs on "no"


@given(candidate=samples, primary=samples, low=st.integers(0, 3), high=st.integers(0, 3))
def test_giving_the_candidate_a_slower_observation_never_makes_it_look_faster(
    candidate: list[int], primary: list[int], low: int, high: int
) -> None:
    low, high = sorted((low, high))
    if low == high or not (candidate[low] and primary[high]):
        return
    before = mann_whitney(binned(*candidate), binned(*primary))
    # swap a candidate observation in bucket `low` with a primary one in bucket `high`: the pooled counts
    # (and so the tie correction) stay the same, only who is slower changes
    candidate[low], candidate[high], primary[high], primary[low] = (
        candidate[low] - 1, candidate[high] + 1, primary[high] - 1, primary[low] + 1
    )  # fmt: skip
    after = mann_whitney(binned(*candidate), binned(*primary))
    assert after.u >= before.u
    assert after.p_value <= before.p_value + 1e-12


# -- the binomial tail ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "n", "p", "expected"),
    [(1, 20, 0.02, 0.3323920282449055), (5, 20, 0.02, 3.859090324326966e-05), (3, 3, 0.02, 8e-06),
     (30, 1000, 0.02, 0.02069651867323949), (15, 1000, 0.02, 0.897471804132691),
     (200, 10000, 0.02, 0.5096887327676877)],
)  # fmt: skip
def test_the_binomial_tail_matches_scipy(k: int, n: int, p: float, expected: float) -> None:
    assert binomial_tail(k, n, p) == pytest.approx(expected, rel=1e-9)


def test_the_binomial_tail_at_the_edges() -> None:
    assert binomial_tail(0, 10, 0.1) == 1.0
    assert binomial_tail(1, 10, 0.0) == 0.0
    assert binomial_tail(10, 10, 1.0) == 1.0
    with pytest.raises(ValueError, match="successes <= trials"):
        binomial_tail(11, 10, 0.1)


@given(n=st.integers(1, 60), k=st.integers(0, 60), p=st.sampled_from(["0.01", "0.02", "0.1", "0.5", "0.9"]))
def test_the_binomial_tail_equals_the_exact_sum(n: int, k: int, p: str) -> None:
    k = min(k, n)
    rate = Fraction(p)
    exact = sum(math.comb(n, i) * rate**i * (1 - rate) ** (n - i) for i in range(k, n + 1))
    assert binomial_tail(k, n, float(rate)) == pytest.approx(float(exact), rel=1e-9, abs=1e-15)
