"""compare(): each kind of difference is found where it should be and ignored where it is told to
(the ignore-path language itself: tests/unit/proxy/config/test_fieldpaths.py)."""

from __future__ import annotations

import copy
import gzip
import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from proxy.shadow.compare import Answer, ComparePolicy, compare, parse_path

JSON = {"content-type": "application/json; charset=utf-8"}
GENERATION: dict[str, Any] = {
    "id": "leg_1",
    "created": 1,
    "prompt": "a red fox",
    "size": "512x512",
    "images": [
        {"name": "a.png", "url": "/api/images/files/a.png", "content_type": "image/png", "width": 512,
         "height": 512, "bytes": 10, "sha256": "00"},
        {"name": "b.png", "url": "/api/images/files/b.png", "content_type": "image/png", "width": 512,
         "height": 512, "bytes": 11, "sha256": "11"},
    ],
}
CONTRACT_POLICY = ComparePolicy(
    headers=("content-type",),
    ignore=tuple(parse_path(p) for p in ("id", "created", "images[*].url", "images[*].name",
                                          "images[*].sha256", "images[*].bytes")),
)


def json_answer(doc: Any, status: int = 201, **headers: str) -> Answer:
    return Answer(status, {**JSON, **headers}, json.dumps(doc).encode())


def png(width: int, height: int, colour: str = "red", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format=fmt)
    return out.getvalue()


def details(primary: Answer, candidate: Answer, policy: ComparePolicy = CONTRACT_POLICY) -> list[str]:
    return [difference.detail for difference in compare(primary, candidate, policy)]


def test_two_generations_that_differ_only_in_ignored_fields_match() -> None:
    other = copy.deepcopy(GENERATION)
    other.update(id="img_9", created=99)
    for image in other["images"]:
        image.update(name="x.png", url="/api/images/files/x.png", bytes=70000, sha256="ff")

    assert details(json_answer(GENERATION), json_answer(other)) == []


def test_a_different_value_is_reported_with_its_path_and_both_values() -> None:
    other = copy.deepcopy(GENERATION)
    other["images"][0]["width"] = 1024

    found = compare(json_answer(GENERATION), json_answer(other), CONTRACT_POLICY)

    assert [(d.kind, d.path) for d in found] == [("body_value", "images[0].width")]
    assert found[0].detail == "body_value at images[0].width: 512 != 1024"


def test_an_ignored_field_must_still_exist_with_the_same_type() -> None:
    missing = copy.deepcopy(GENERATION)
    del missing["id"]
    retyped = copy.deepcopy(GENERATION)
    retyped["created"] = "yesterday"

    assert details(json_answer(GENERATION), json_answer(missing)) == ["body_shape at id: present != missing"]
    assert details(json_answer(GENERATION), json_answer(retyped)) == [
        "body_shape at created: number != string"
    ]


def test_shape_differences_name_extra_keys_and_array_lengths() -> None:
    other = copy.deepcopy(GENERATION)
    other["images"].pop()
    other["model"] = "gpt-image-1"

    assert details(json_answer(GENERATION), json_answer(other)) == [
        "body_shape at model: missing != present",
        "body_shape at images: 2 items != 1 items",
    ]


def test_a_json_primary_against_a_garbage_candidate_is_a_shape_difference() -> None:
    garbage = Answer(201, JSON, b"<html>oops")
    assert details(json_answer(GENERATION), garbage) == ["body_shape at (body): JSON != not JSON"]


def test_status_and_listed_headers_are_compared_and_others_are_not() -> None:
    primary = json_answer({"a": 1}, 201, location="/api/images/leg_1")
    candidate = Answer(500, {"content-type": "text/html"}, b'{"a": 1}')

    assert details(primary, candidate) == [
        "status at (status): 201 != 500",
        'header at content-type: "application/json; charset=utf-8" != "text/html"',
    ]
    assert details(primary, candidate, ComparePolicy(status=False)) == []


def test_a_header_missing_on_one_side_is_shown_as_absent() -> None:
    policy = ComparePolicy(headers=("etag",))
    assert details(Answer(200, {"etag": '"1"'}, b""), Answer(200, {}, b""), policy) == [
        'header at etag: "\\"1\\"" != absent'
    ]


def test_images_are_compared_by_format_and_dimensions_not_by_pixels() -> None:
    policy = ComparePolicy(images="dimensions")
    image = {"content-type": "image/png"}

    assert details(Answer(200, image, png(8, 8, "red")), Answer(200, image, png(8, 8, "blue")), policy) == []
    assert details(Answer(200, image, png(8, 8)), Answer(200, image, png(16, 8)), policy) == [
        "image at (body): PNG 8x8 != PNG 16x8"
    ]
    assert details(Answer(200, image, png(8, 8)), Answer(200, image, png(8, 8, fmt="JPEG")), policy) == [
        "image at (body): PNG 8x8 != JPEG 8x8"
    ]
    assert details(Answer(200, image, png(8, 8)), Answer(200, image, b"not an image"), policy) == [
        "image at (body): PNG 8x8 != not a readable image (UnidentifiedImageError)"
    ]


def test_images_by_bytes_see_every_pixel_and_images_off_see_nothing() -> None:
    image = {"content-type": "image/png"}
    red, blue = Answer(200, image, png(8, 8, "red")), Answer(200, image, png(8, 8, "blue"))

    assert [d.kind for d in compare(red, blue, ComparePolicy(images="bytes"))] == ["image"]
    assert compare(red, red, ComparePolicy(images="bytes")) == []
    assert compare(red, Answer(200, image, png(99, 1)), ComparePolicy(images="off")) == []


def test_other_bodies_must_be_byte_identical() -> None:
    text = {"content-type": "text/plain"}
    assert details(Answer(200, text, b"hello"), Answer(200, text, b"hello")) == []
    assert details(Answer(200, text, b"hello"), Answer(200, text, b"hullo")) == [
        "body_value at (body): other bytes (5 bytes)"
    ]
    assert details(Answer(200, text, b"hello"), Answer(200, text, b"hello!")) == [
        "body_value at (body): 5 bytes != 6 bytes"
    ]


def test_a_gzipped_answer_is_compared_by_its_content_not_its_encoding() -> None:
    body = json.dumps(GENERATION).encode()
    zipped = Answer(201, {**JSON, "content-encoding": "gzip"}, gzip.compress(body))
    assert details(Answer(201, JSON, body), zipped) == []


def test_a_huge_mismatch_is_capped_at_fifty_differences() -> None:
    many = {str(i): i for i in range(500)}
    assert len(compare(json_answer(many), json_answer({k: -1 for k in many}), ComparePolicy())) == 50


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(doc=json_values)
def test_any_json_answer_matches_itself(doc: Any) -> None:
    assert compare(json_answer(doc), json_answer(doc), CONTRACT_POLICY) == []


@settings(max_examples=200, deadline=None)
@given(a=st.integers() | st.text(max_size=5), b=st.integers() | st.text(max_size=5), index=st.integers(0, 1))
def test_a_change_under_an_ignore_path_is_never_reported_and_elsewhere_always_is(
    a: int | str, b: int | str, index: int
) -> None:
    primary, candidate = copy.deepcopy(GENERATION), copy.deepcopy(GENERATION)
    primary["images"][index]["sha256"], candidate["images"][index]["sha256"] = str(a), str(b)
    assert compare(json_answer(primary), json_answer(candidate), CONTRACT_POLICY) == []
    primary["prompt"], candidate["prompt"] = str(a), str(b)
    found = compare(json_answer(primary), json_answer(candidate), CONTRACT_POLICY)
    assert [(d.kind, d.path) for d in found] == ([] if str(a) == str(b) else [("body_value", "prompt")])
