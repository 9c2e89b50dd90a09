"""The learned noise baseline: only JSON body values are ever noise; bounded, visible, clearable."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.shadow.compare import Answer, ComparePolicy, Difference, compare
from proxy.shadow.noise import NoiseMemory, learnable, noise_path
from proxy.shadow.policy import ShadowPolicy

FP = ShadowPolicy(percent=100, noise_percent=10).noise_fingerprint


def answer(doc: object, status: int = 200, **headers: str) -> Answer:
    return Answer(status, {"content-type": "application/json", **headers}, json.dumps(doc).encode())


def test_a_field_that_differs_between_two_primary_answers_is_noise_from_then_on() -> None:
    noise = NoiseMemory()
    first = answer({"token": "a1", "items": [{"t": 1}], "v": 1})
    second = answer({"token": "b2", "items": [{"t": 2}], "v": 1})
    noise.learn("images", compare(first, second, ComparePolicy()), fingerprint=FP, at=100.0)

    candidate = answer({"token": "zz", "items": [{"t": 9}, {"t": 9}], "v": 2})
    real, explained = noise.split("images", compare(first, candidate, ComparePolicy()))

    assert [d.path for d in real] == ["items", "v"]  # the length of items was never noisy
    assert sorted(d.path for d in explained) == ["items[0].t", "token"]
    assert noise.split("other-route", explained) == (explained, [])
    assert noise.paths("images") == ["token", "items[*].t"]


def test_status_header_and_image_differences_between_primaries_are_never_learned() -> None:
    noise = NoiseMemory()
    ok = answer({"v": 1}, etag="a")
    failing = Answer(503, {"content-type": "text/plain", "etag": "b"}, b"busy")
    pairs = compare(ok, failing, ComparePolicy(headers=("etag", "content-type")))
    assert {d.kind for d in pairs} >= {"status", "header"}
    image = [Difference.of("image", "(body)", "png 512x512 != png 1024x1024")]

    assert noise.learn("images", [*pairs, *image], fingerprint=FP, at=1.0) == []
    assert noise.paths("images") == []
    assert noise.pairs("images") == 1  # the pair is counted, nothing was learned from it

    candidate_500 = Answer(500, {"content-type": "application/json"}, b'{"v": 1}')
    real, explained = noise.split("images", compare(ok, candidate_500, ComparePolicy()))
    assert [d.kind for d in real] == ["status"]
    assert explained == []


def test_a_status_flip_in_the_baseline_still_leaves_every_candidate_500_a_status_mismatch() -> None:
    noise = NoiseMemory()
    for i in range(20):  # the primary flips between 200 and 503 while its body values also move
        again = answer({"v": i}, status=503 if i % 2 else 200)
        noise.learn("images", compare(answer({"v": -1}), again, ComparePolicy()), fingerprint=FP, at=float(i))
    assert noise.paths("images") == ["v"]

    for i in range(20):
        found = compare(answer({"v": i}), answer({"v": -i}, status=500), ComparePolicy())
        real, _ = noise.split("images", found)
        assert [d.kind for d in real] == ["status"]


def test_a_learned_field_must_still_exist_with_the_same_type() -> None:
    noise = NoiseMemory()
    noise.learn("images", compare(answer({"seed": 1}), answer({"seed": 2}), ComparePolicy()), fingerprint=FP,
                at=1.0)  # fmt: skip
    primary = answer({"seed": 1})

    missing, _ = noise.split("images", compare(primary, answer({}), ComparePolicy()))
    retyped, _ = noise.split("images", compare(primary, answer({"seed": "1"}), ComparePolicy()))
    moved, excused = noise.split("images", compare(primary, answer({"seed": 7}), ComparePolicy()))

    assert [(d.kind, d.path) for d in missing] == [("body_shape", "seed")]
    assert [(d.kind, d.path) for d in retyped] == [("body_shape", "seed")]
    assert moved == []
    assert [d.path for d in excused] == ["seed"]


def test_a_non_json_body_difference_is_never_noise() -> None:
    whole = Difference.of("body_value", "(body)", "3 bytes != 4 bytes")
    assert not learnable(whole)
    noise = NoiseMemory()
    assert noise.learn("r", [whole], fingerprint=FP, at=1.0) == []
    assert noise.split("r", [whole]) == ([whole], [])


def test_each_path_says_when_it_was_learned_and_from_how_many_pairs() -> None:
    noise = NoiseMemory()
    seed = [Difference.of("body_value", "images[0].seed", "1 != 2")]
    assert noise.learn("r", seed, fingerprint=FP, at=10.0) == ["images[*].seed"]
    again = [Difference.of("body_value", "images[3].seed", "x")]
    assert noise.learn("r", again, fingerprint=FP, at=20.0) == []
    noise.learn("r", [], fingerprint=FP, at=30.0)

    [entry] = noise.entries("r")
    assert (entry.path, entry.learned_at, entry.last_seen_at) == ("images[*].seed", 10.0, 20.0)
    assert entry.pairs == 2
    assert noise.pairs("r") == 3


def test_noise_keys_generalize_list_indexes() -> None:
    assert noise_path(Difference.of("body_value", "images[3].seed", "1 != 2")) == "images[*].seed"
    assert noise_path(Difference.of("body_value", "[12].a[0]", "x")) == "[*].a[*]"


def test_the_noise_memory_is_bounded_per_route_and_in_routes() -> None:
    noise = NoiseMemory(max_paths=3, max_routes=2)
    for i in range(10):
        noise.learn("a", [Difference.of("body_value", f"f{i}", "1 != 2")], fingerprint=FP, at=float(i))
    assert noise.paths("a") == ["f7", "f8", "f9"]
    noise.learn("b", [Difference.of("body_value", "x", "1 != 2")], fingerprint=FP, at=1.0)
    noise.learn("c", [Difference.of("body_value", "y", "1 != 2")], fingerprint=FP, at=1.0)
    assert noise.paths("a") == []
    assert noise.routes() == ["b", "c"]


def test_noise_is_dropped_when_the_comparison_changes_or_the_route_stops_shadowing() -> None:
    noise = NoiseMemory()
    for route in ("kept", "recompared", "gone"):
        noise.learn(route, [Difference.of("body_value", "v", "1 != 2")], fingerprint=FP, at=1.0)
    recompared = ShadowPolicy(percent=100, noise_percent=10, compare=ComparePolicy(status=False))
    changed = recompared.noise_fingerprint
    same = ShadowPolicy(percent=50, noise_percent=10, max_in_flight=3).noise_fingerprint  # not about noise

    dropped = noise.follow({"kept": same, "recompared": changed})

    assert sorted(dropped) == ["gone", "recompared"]
    assert noise.paths("kept") == ["v"]
    assert noise.routes() == ["kept"]


def test_a_reset_forgets_one_route() -> None:
    noise = NoiseMemory()
    noise.learn("a", [Difference.of("body_value", "v", "1 != 2")], fingerprint=FP, at=1.0)
    noise.learn("b", [Difference.of("body_value", "w", "1 != 2")], fingerprint=FP, at=1.0)
    assert noise.reset("a") == 1
    assert noise.reset("a") == 0
    assert noise.paths("a") == []
    assert noise.paths("b") == ["w"]


@given(kind=st.sampled_from(["status", "header", "body_shape", "image"]), path=st.text(max_size=20))
def test_only_body_values_can_ever_be_learned(kind: str, path: str) -> None:
    noise = NoiseMemory()
    difference = Difference.of(kind, path, "x")  # type: ignore[arg-type]
    noise.learn("r", [difference], fingerprint=FP, at=1.0)
    assert noise.split("r", [difference]) == ([difference], [])
