"""The whole bodies of kept mismatches: JSON and images only, within a byte budget per route, oldest
dropped first, forgotten with their mismatch."""

from __future__ import annotations

import gzip

from hypothesis import given
from hypothesis import strategies as st

from proxy.shadow.compare import Answer
from proxy.shadow.mismatches import AnswerView, Mismatch, MismatchStore
from proxy.shadow.samples import Bodies, Body, SampleVault


def pair(size: int, media: str = "image/png") -> Bodies:
    return Bodies(Body(media, b"p" * (size // 2)), Body(media, b"c" * (size - size // 2)))


def test_only_json_and_image_answers_are_worth_keeping_and_they_are_kept_decoded() -> None:
    png = Answer(200, {"content-type": "image/png"}, b"\x89PNG...")
    zipped = Answer(200, {"content-type": "application/json; charset=utf-8", "content-encoding": "gzip"},
                    gzip.compress(b'{"a": 1}'))  # fmt: skip
    text = Answer(200, {"content-type": "text/plain"}, b"hello")

    kept = Bodies.of(png, text)
    assert kept is not None
    assert kept.primary.is_image
    assert kept.candidate.media_type == "text/plain"
    both = Bodies.of(zipped, zipped)
    assert both is not None
    assert both.primary.data == b'{"a": 1}'
    assert both.primary.is_json
    assert Bodies.of(text, text) is None


def test_the_oldest_pairs_make_room_within_the_routes_budget() -> None:
    vault = SampleVault()
    assert vault.keep("images", 1, pair(40), budget=100).result == "kept"
    assert vault.keep("images", 2, pair(40), budget=100).dropped == 0
    third = vault.keep("images", 3, pair(40), budget=100)
    assert (third.result, third.dropped) == ("kept", 1)
    assert vault.get(1) is None
    assert vault.get(3) is not None
    assert vault.held("images") == 80
    assert vault.keep("other", 4, pair(90), budget=100).dropped == 0  # another route, its own budget


def test_a_pair_larger_than_the_budget_is_not_kept_and_a_zero_budget_keeps_nothing() -> None:
    vault = SampleVault()
    assert vault.keep("images", 1, pair(101), budget=100).result == "too_large"
    assert vault.keep("images", 2, pair(10), budget=0).result is None
    assert vault.keep("images", 3, None, budget=100).result is None
    assert vault.held("images") == 0


@given(st.lists(st.integers(0, 60), max_size=40), st.integers(1, 100))
def test_a_route_never_holds_more_than_its_budget(sizes: list[int], budget: int) -> None:
    vault = SampleVault()
    for ref, size in enumerate(sizes):
        vault.keep("images", ref, pair(size), budget=budget)
        assert vault.held("images") <= budget


def mismatch(at: float, route: str = "images") -> Mismatch:
    view = AnswerView.of(Answer(200, {"content-type": "image/png"}, b"x"), latency_s=0, max_body_bytes=16)
    return Mismatch(at=at, route=route, request_id=f"r{at}", method="GET", path="/p", differences=(),
                    noise=(), primary=view, candidate=view)  # fmt: skip


def test_the_store_finds_a_mismatch_and_its_bodies_by_ref_until_the_mismatch_goes() -> None:
    store = MismatchStore(keep=2)
    first = store.record(mismatch(1.0), bodies=pair(10), budget=1000)
    second = store.record(mismatch(2.0), bodies=pair(10), budget=1000)
    assert first.ref != second.ref
    assert store.find(first.ref) is not None
    assert store.bodies(first.ref) is not None
    assert [ref for ref, _ in store.entries("images")] == [second.ref, first.ref]

    third = store.record(mismatch(3.0), bodies=pair(10), budget=1000)  # keep=2: the first goes
    assert store.find(first.ref) is None
    assert store.bodies(first.ref) is None
    assert store.bodies(third.ref) is not None

    store.record(mismatch(4.0), keep=1)  # a smaller keep cuts the older ones, with their bodies
    assert store.bodies(third.ref) is None
    assert store.find(12345) is None


def test_a_route_pushed_out_of_the_store_takes_its_bodies_along() -> None:
    store = MismatchStore(max_routes=1)
    gone = store.record(mismatch(1.0, "a"), bodies=pair(10), budget=100)
    store.record(mismatch(2.0, "b"), bodies=pair(10), budget=100)
    assert store.bodies(gone.ref) is None
