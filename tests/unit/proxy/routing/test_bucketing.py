from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.routing.bucketing import bucket, in_rollout, threshold

# What the schema accepts (two decimals), and any float in range for good measure.
percents = st.integers(0, 10_000).map(lambda basis_points: basis_points / 100) | st.floats(0, 100)


@given(key=st.text(), salt=st.text())
def test_a_key_always_lands_in_the_same_bucket(key: str, salt: str) -> None:
    assert bucket(key, salt=salt) == bucket(key, salt=salt)
    assert 0 <= bucket(key, salt=salt) < 10_000


def test_buckets_do_not_depend_on_the_process() -> None:
    # Python's hash() is salted per process; a stable hash gives the same answer in a fresh one.
    code = "from proxy.routing.bucketing import bucket; print(bucket('user-42', salt='images'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "random", "PYTHONPATH": "."})
    assert int(other.stdout) == bucket("user-42", salt="images")


def test_known_buckets_never_change_across_releases() -> None:
    # Pinned values: changing the hash would move users between primary and candidate.
    assert [bucket(key, salt="images") for key in ("alice", "bob", "10.0.0.1")] == [5210, 9541, 5094]


@given(key=st.text(), a=percents, b=percents)
def test_raising_the_percentage_never_moves_a_user_back(key: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    if in_rollout(key, percent=low, salt="images"):
        assert in_rollout(key, percent=high, salt="images")


@given(key=st.text(), a=percents, b=percents)
def test_lowering_the_percentage_only_moves_the_top_slice_back(key: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    if not in_rollout(key, percent=high, salt="images"):
        assert not in_rollout(key, percent=low, salt="images")
    was_in, now_in = in_rollout(key, percent=high, salt="images"), in_rollout(key, percent=low, salt="images")
    moved_back = was_in and not now_in
    if moved_back:
        assert threshold(low) <= bucket(key, salt="images") < threshold(high)


@given(key=st.text())
def test_zero_percent_is_nobody_and_a_hundred_percent_is_everybody(key: str) -> None:
    assert not in_rollout(key, percent=0, salt="images")
    assert in_rollout(key, percent=100, salt="images")


def test_different_salts_give_different_orders() -> None:
    keys = [f"user-{i}" for i in range(200)]
    assert [bucket(k, salt="a") for k in keys] != [bucket(k, salt="b") for k in keys]


@pytest.mark.parametrize("percent", [0.01, 1, 10, 25, 50, 99.99])
def test_the_candidate_share_over_100000_keys_is_within_half_a_point(percent: float) -> None:
    rng = random.Random(f"share-{percent}")  # fixed seed: the test is deterministic
    keys = (f"{rng.getrandbits(64):x}" for _ in range(100_000))
    share = sum(in_rollout(key, percent=percent, salt="images") for key in keys) / 1000
    assert abs(share - percent) <= 0.5


def test_two_decimals_are_honoured_exactly() -> None:
    assert threshold(0.01) == 1
    assert threshold(12.34) == 1234
    assert threshold(0.29) == 29
    assert threshold(99.99) == 9999
