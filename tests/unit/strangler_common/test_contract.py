from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangler_common.contract import (
    SIZES,
    GenerateParams,
    InvalidRequest,
    load_contract,
    parse_generate_request,
    validate,
)


def test_the_contract_is_an_openapi_3_1_document_with_the_image_paths() -> None:
    document = load_contract()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/api/images", "/api/images/{id}", "/api/images/files/{name}"}
    assert tuple(document["components"]["schemas"]["Size"]["enum"]) == SIZES


def test_defaults_come_from_the_contract() -> None:
    assert parse_generate_request({"prompt": "a red fox"}) == GenerateParams("a red fox", 1, "1024x1024")


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({}, "prompt", "is required"),
        ({"prompt": ""}, "prompt", "1 to 1000"),
        ({"prompt": "x" * 1001}, "prompt", "1 to 1000"),
        ({"prompt": 5}, "prompt", "type string"),
        ({"prompt": "x", "n": 0}, "n", "between 1 and 4"),
        ({"prompt": "x", "n": 5}, "n", "between 1 and 4"),
        ({"prompt": "x", "n": True}, "n", "type integer"),
        ({"prompt": "x", "n": 1.5}, "n", "type integer"),
        ({"prompt": "x", "size": "300x300"}, "size", "one of"),
        ({"prompt": "x", "style": "vivid"}, "style", "not a known field"),
    ],
)
def test_each_invalid_field_is_named(body: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_generate_request(body)
    assert caught.value.field == field
    assert fragment in str(caught.value)


@pytest.mark.parametrize("body", [[], "prompt", 3, None])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_generate_request(body)


@given(prompt=st.text(min_size=1, max_size=1000), n=st.integers(1, 4), size=st.sampled_from(SIZES))
def test_every_valid_request_is_accepted_as_given(prompt: str, n: int, size: str) -> None:
    assert parse_generate_request({"prompt": prompt, "n": n, "size": size}) == GenerateParams(prompt, n, size)


def test_response_schemas_reject_a_generation_with_a_foreign_url() -> None:
    generation = {
        "id": "g1",
        "created": 1,
        "prompt": "p",
        "size": "256x256",
        "images": [
            {
                "name": "a.png",
                "url": "https://elsewhere.example/a.png",
                "content_type": "image/png",
                "width": 256,
                "height": 256,
                "bytes": 10,
                "sha256": "0" * 64,
            }
        ],
    }
    with pytest.raises(InvalidRequest, match="url"):
        validate("Generation", generation)
    generation["images"][0]["url"] = "/api/images/files/a.png"  # type: ignore[index]
    validate("Generation", generation)
