"""Shadow sampling and the mismatch store: deterministic, bounded, pure (noise baseline: test_noise.py)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.routing.bucketing import in_rollout
from proxy.shadow.compare import Answer, Difference
from proxy.shadow.mismatches import AnswerView, Mismatch, MismatchStore
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


def answer(doc: object) -> Answer:
    return Answer(200, {"content-type": "application/json"}, json.dumps(doc).encode())


def mismatch(route: str, at: float, body: bytes = b"{}") -> Mismatch:
    view = AnswerView.of(Answer(200, {"content-type": "application/json", "set-cookie": "sid=1"}, body),
                         latency_s=0.01, max_body_bytes=16)
    return Mismatch(at=at, route=route, request_id=f"r{at}", method="GET", path="/p",
                    differences=(Difference.of("status", "(status)", "200 != 500"),), noise=(),
                    primary=view, candidate=view)


def test_the_store_keeps_the_last_n_per_route_newest_first() -> None:
    store = MismatchStore(keep=3)
    for i in range(10):
        store.record(mismatch("images", float(i)))
    store.record(mismatch("other", 100.0), keep=1)

    assert [m.at for m in store.latest("images", 20)] == [9.0, 8.0, 7.0]
    assert [m.at for m in store.latest("images", 2)] == [9.0, 8.0]
    assert [m.at for m in store.latest(None, 2)] == [100.0, 9.0]
    assert store.latest("nobody") == []
    assert store.routes() == {"images": 3, "other": 1}


def test_the_store_forgets_the_least_recent_route_beyond_its_bound() -> None:
    store = MismatchStore(max_routes=2)
    for name in ("a", "b", "c"):
        store.record(mismatch(name, 1.0))
    assert set(store.routes()) == {"b", "c"}


def test_stored_bodies_are_truncated_and_cookies_redacted() -> None:
    record = mismatch("images", 1.0, body=json.dumps({"x": "y" * 100}).encode()).to_json()

    assert record["primary"]["body"] == '{"x": "yyyyyyyyy'
    assert record["primary"]["body_truncated"] is True
    assert record["primary"]["body_size"] == 109
    assert record["primary"]["headers"]["set-cookie"] == "<redacted>"
    assert record["differences"] == [
        {"kind": "status", "path": "(status)", "detail": "status at (status): 200 != 500"}
    ]


def test_a_binary_body_is_stored_as_base64() -> None:
    png = Answer(200, {"content-type": "image/png"}, b"\x89PNG\r\n")
    view = AnswerView.of(png, latency_s=0, max_body_bytes=64)
    assert (view.encoding, view.body) == ("base64", "iVBORw0K")


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=300), limit=st.integers(1, 64))
def test_a_stored_body_never_exceeds_its_bound(body: bytes, limit: int) -> None:
    view = AnswerView.of(Answer(200, {"content-type": "text/plain"}, body), latency_s=0, max_body_bytes=limit)
    assert len(view.body) <= max(limit, 4 * ((limit + 2) // 3))
    assert view.truncated == (len(body) > limit)
