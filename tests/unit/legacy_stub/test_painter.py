from __future__ import annotations

import io

import pytest
from PIL import Image

from legacy_stub.painter import paint_png


@pytest.mark.parametrize(("width", "height"), [(256, 256), (512, 512), (1024, 1024), (3, 7)])
def test_a_painted_png_has_exactly_the_requested_size(width: int, height: int) -> None:
    data = paint_png("a fox", width=width, height=height, index=0)

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.size == (width, height)


def test_the_same_prompt_and_index_always_give_the_same_bytes() -> None:
    first = paint_png("a fox", width=64, height=64, index=1)

    assert paint_png("a fox", width=64, height=64, index=1) == first


def test_another_prompt_or_index_gives_another_picture() -> None:
    base = paint_png("a fox", width=64, height=64, index=0)

    assert paint_png("a hound", width=64, height=64, index=0) != base
    assert paint_png("a fox", width=64, height=64, index=1) != base
