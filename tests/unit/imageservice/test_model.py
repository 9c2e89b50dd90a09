from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imageservice.domain.errors import GeneratorFailure, InvalidInput
from imageservice.domain.model import (
    GeneratedImage,
    Generation,
    GenerationRequest,
    Size,
    Status,
    generation_id_of,
    is_blob_name,
)

GID = "img_" + "0" * 32


def request(prompt: str = "a fox", n: int = 1, size: str = "256x256") -> GenerationRequest:
    return GenerationRequest(prompt, n, Size.parse(size))


def test_only_the_contract_sizes_parse() -> None:
    assert Size.parse("512x512") == Size(512, 512)
    with pytest.raises(InvalidInput, match="size"):
        Size.parse("300x300")


@pytest.mark.parametrize(
    ("prompt", "n", "field"), [("", 1, "prompt"), ("x" * 1001, 1, "prompt"), ("ok", 0, "n"), ("ok", 5, "n")]
)
def test_a_request_outside_the_contract_is_refused_naming_the_field(prompt: str, n: int, field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        request(prompt, n)


def test_the_fingerprint_depends_on_the_request_and_nothing_else() -> None:
    assert request().fingerprint() == request().fingerprint()
    assert request().fingerprint() != request(n=2).fingerprint()
    assert request().fingerprint() != request(size="512x512").fingerprint()
    assert request().fingerprint() != request(prompt="a fox ").fingerprint()


def test_a_generation_records_one_named_image_per_generated_picture() -> None:
    generation = Generation.start(GID, request(n=2), now=1000.7)
    done, blobs = generation.with_images([GeneratedImage(b"a", 256, 256), GeneratedImage(b"bb", 256, 256)])

    assert done.status is Status.GENERATED
    assert done.created == 1000
    assert [name for name, _ in blobs] == [f"{GID}_0.png", f"{GID}_1.png"]
    assert [image.bytes for image in done.images] == [1, 2]
    assert done.complete().status is Status.COMPLETED
    assert done.references(f"{GID}_1.png")
    assert not done.references(f"{GID}_2.png")


def test_a_generator_returning_the_wrong_count_or_size_is_a_generator_failure() -> None:
    generation = Generation.start(GID, request(n=2), now=0)
    with pytest.raises(GeneratorFailure):
        generation.with_images([GeneratedImage(b"a", 256, 256)])
    with pytest.raises(GeneratorFailure):
        generation.with_images([GeneratedImage(b"a", 256, 256), GeneratedImage(b"a", 512, 512)])


def test_an_incomplete_generation_cannot_complete() -> None:
    with pytest.raises(ValueError, match="images"):
        Generation.start(GID, request(), now=0).complete()


@given(st.text())
def test_no_name_with_a_path_separator_or_dots_is_ever_a_blob_name(name: str) -> None:
    if is_blob_name(name):
        assert "/" not in name
        assert "\\" not in name
        assert ".." not in name
        assert generation_id_of(name) is not None


def test_blob_names_lead_back_to_their_generation() -> None:
    assert generation_id_of(f"{GID}_3.png") == GID
    assert generation_id_of("../etc/passwd") is None
    assert not is_blob_name(f"{GID}_0.png/../x")
