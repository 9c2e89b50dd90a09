"""Painting images: a deterministic PNG from a prompt (pure), and the slow painter the worker calls.

Owns what an image looks like and how long it takes; does not own queueing or storage.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Protocol

from PIL import Image, ImageDraw

__all__ = ["Painter", "SlowPainter", "paint_png"]

_SHAPES = 6


class Painter(Protocol):
    """Paints image number `index` of a generation; the worker awaits it once per image."""

    async def __call__(self, prompt: str, *, width: int, height: int, index: int) -> bytes: ...


def paint_png(prompt: str, *, width: int, height: int, index: int) -> bytes:
    """A PNG of exactly width x height; the same inputs always give the same bytes."""
    seed = hashlib.sha256(f"{index}\n{prompt}".encode()).digest()
    background = (seed[0], seed[1], seed[2])
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    for shape in range(_SHAPES):
        b = seed[3 + shape * 4 : 7 + shape * 4]
        x0, y0 = b[0] * width // 256, b[1] * height // 256
        x1 = x0 + max(1, b[2] * (width - x0) // 256)
        y1 = y0 + max(1, b[3] * (height - y0) // 256)
        colour = (b[3], b[0], b[2])
        if shape % 2:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    out = io.BytesIO()
    # Fast compression: the stub is slow on purpose through the delay, not through zlib.
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class SlowPainter:
    """The monolith's painter: waits `delay_s` per image, then paints off the event loop."""

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s

    async def __call__(self, prompt: str, *, width: int, height: int, index: int) -> bytes:
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
        return await asyncio.to_thread(paint_png, prompt, width=width, height=height, index=index)
