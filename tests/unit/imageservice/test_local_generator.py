from __future__ import annotations

import io

from PIL import Image

from imageservice.adapters.local_generator import LocalGenerator, paint
from imageservice.domain.model import GenerationRequest, Size


def test_the_same_prompt_seed_and_size_paint_the_same_png() -> None:
    assert paint("a fox", 0, Size(256, 256)) == paint("a fox", 0, Size(256, 256))


def test_another_prompt_or_seed_paints_another_picture() -> None:
    base = paint("a fox", 0, Size(256, 256))
    assert paint("a fox", 1, Size(256, 256)) != base
    assert paint("a wolf", 0, Size(256, 256)) != base


async def test_the_local_generator_returns_n_pngs_of_the_requested_size() -> None:
    images = await LocalGenerator().generate(GenerationRequest("a fox", 3, Size(512, 512)))

    assert len(images) == 3
    assert len({image.png for image in images}) == 3
    for image in images:
        with Image.open(io.BytesIO(image.png)) as decoded:
            assert decoded.format == "PNG"
            assert decoded.size == (512, 512) == (image.width, image.height)
