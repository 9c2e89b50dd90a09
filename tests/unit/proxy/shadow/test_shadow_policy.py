"""Shadow sampling: deterministic, independent of the rollout, pure (noise baseline: test_noise.py; the
mismatch store: test_mismatches.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.routing.bucketing import in_rollout
from proxy.shadow.policy import ShadowPolicy


def policy(percent: float = 100, **extra: object) -> ShadowPolicy:
    return ShadowPolicy(percent=percent, salt="images", **extra)  # type: ignore[arg-type]


@given(key=st.text(), percent=st.floats(0, 100))
def test_sampling_gives_the_same_answer_for_the_same_key_every_time(key: str, percent: float) -> None:
    assert policy(percent).skip_reason("GET", key) == policy(percent).skip_reason("GET", key)


@given(key=st.text(), a=st.floats(0, 100), b=st.floats(0, 100))
def test_raising_the_shadow_percentage_only_adds_requests(key: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    if policy(low).skip_reason("GET", key) is None:
        assert policy(high).skip_reason("GET", key) is None


def test_the_sampled_share_is_close_to_the_percentage() -> None:
    for percent in (1, 10, 50):
        shadow = policy(percent)
        mirrored = sum(shadow.skip_reason("GET", f"req-{i}") is None for i in range(20_000))
        assert abs(mirrored / 200 - percent) < 1.0


def test_shadow_sampling_is_independent_of_the_rollout_buckets() -> None:
    # With the rollout's own salt, a 10 % shadow would pick only users the 10 % rollout already moved.
    keys = [f"user-{i}" for i in range(20_000)]
    served_by_primary = [k for k in keys if not in_rollout(k, percent=10, salt="images")]
    mirrored = sum(policy(10).skip_reason("GET", k) is None for k in served_by_primary)
    assert abs(mirrored / len(served_by_primary) * 100 - 10) < 1.0


def test_a_method_that_is_not_listed_is_skipped_before_sampling() -> None:
    assert policy(100).skip_reason("POST", "x") == "skipped_method"
    assert policy(0.01).skip_reason("POST", "x") == "skipped_method"
    assert policy(100, methods=frozenset({"POST"})).skip_reason("POST", "x") is None
    assert policy(0).skip_reason("GET", "x") == "sampled_out"


def test_the_noise_sample_is_deterministic_and_limited_to_its_methods() -> None:
    shadow = policy(100, noise_percent=50)
    picked = [shadow.wants_noise_sample("GET", f"r{i}") for i in range(2000)]
    assert picked == [shadow.wants_noise_sample("GET", f"r{i}") for i in range(2000)]
    assert 800 < sum(picked) < 1200
    assert not any(shadow.wants_noise_sample("POST", f"r{i}") for i in range(200))
    assert not any(policy(100).wants_noise_sample("GET", f"r{i}") for i in range(200))
