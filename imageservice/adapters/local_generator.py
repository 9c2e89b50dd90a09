"""The offline generator: paints a deterministic picture of a prompt with Pillow, no network.

The same prompt, seed and size always give the same PNG bytes. Image i of a request uses seed i, so
the n images of one request differ while a retry of the same request paints the same pictures.
An optional per-image delay lets benchmarks compare legacy and new at equal generation time.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random

from PIL import Image, ImageDraw

from imageservice.domain.model import GeneratedImage, GenerationRequest, Size

__all__ = ["LocalGenerator", "paint"]

_GRID = 8  # the picture is a smooth upscale of an 8x8 field of colours, plus a few shapes


def paint(prompt: str, seed: int, size: Size) -> bytes:
    digest = hashlib.sha256(f"{seed}:{size}:{prompt}".encode()).digest()
    rng = random.Random(digest)  # noqa: S311 - art, not security
    field = Image.new("RGB", (_GRID, _GRID))
    field.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(_GRID * _GRID)]
    )
    picture = field.resize((size.width, size.height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(picture)
    for _ in range(3 + digest[0] % 4):
        x0, y0 = rng.randrange(size.width), rng.randrange(size.height)
        radius = rng.randrange(size.width // 16, size.width // 4)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse(
            (x0 - radius, y0 - radius, x0 + radius, y0 + radius), outline=colour, width=max(2, radius // 8)
        )
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class LocalGenerator:
    def __init__(self, *, delay_s: float = 0.0) -> None:
        self._delay_s = delay_s

    @property
    def name(self) -> str:
        return "local"

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s * request.n)
        pngs = await asyncio.to_thread(
            lambda: [paint(request.prompt, seed, request.size) for seed in range(request.n)]
        )
        return [GeneratedImage(png, request.size.width, request.size.height) for png in pngs]
