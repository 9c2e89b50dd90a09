from __future__ import annotations

import math

import pytest

from bench.stats import (
    Summary,
    growth_percent,
    paired_differences,
    paired_ratios,
    percentile,
    rotated,
    summarize,
)


def test_a_summary_is_the_median_with_the_lowest_and_highest_round() -> None:
    assert summarize([3.0, 1.0, 2.0]) == Summary(median=2.0, low=1.0, high=3.0, rounds=3)


def test_a_failed_round_is_left_out_of_the_summary() -> None:
    assert summarize([1.0, math.nan, 5.0]) == Summary(median=3.0, low=1.0, high=5.0, rounds=2)


def test_nothing_to_summarize_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no values"):
        summarize([math.nan])


def test_ratios_are_taken_round_by_round_not_as_a_ratio_of_medians() -> None:
    ours, reference = [10.0, 20.0, 30.0], [20.0, 20.0, 10.0]
    assert paired_ratios(ours, reference) == [0.5, 1.0, 3.0]
    assert summarize(paired_ratios(ours, reference)).median == 1.0
    assert summarize(ours).median / summarize(reference).median == 1.0  # same here, not in general


def test_a_zero_reference_gives_no_ratio_instead_of_a_crash() -> None:
    assert math.isnan(paired_ratios([1.0], [0.0])[0])


def test_paired_values_must_come_from_the_same_rounds() -> None:
    with pytest.raises(ValueError, match="same number of rounds"):
        paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same number of rounds"):
        paired_differences([1.0], [])


def test_differences_keep_their_sign() -> None:
    assert paired_differences([1.5, 1.0], [1.0, 1.25]) == [0.5, -0.25]


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 99) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0) == 1.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0


def test_a_percentile_outside_0_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_rendering_shows_the_range_only_when_rounds_differ() -> None:
    assert summarize([1.0, 2.0, 3.0]).render("{:.1f}") == "2.0 (1.0–3.0)"
    assert summarize([2.0, 2.0]).render("{:.1f}") == "2.0"


def test_growth_is_a_percentage_of_the_starting_value() -> None:
    assert growth_percent(100.0, 110.0) == pytest.approx(10.0)
    assert math.isnan(growth_percent(0.0, 5.0))


def test_each_round_starts_with_another_candidate_and_keeps_them_all() -> None:
    names = ["off", "fast", "slow", "down"]
    orders = [rotated(names, r) for r in range(5)]
    assert orders[0] == names
    assert orders[1] == ["fast", "slow", "down", "off"]
    assert [order[0] for order in orders] == ["off", "fast", "slow", "down", "off"]
    assert all(sorted(order) == sorted(names) for order in orders)
    assert rotated([], 3) == []
