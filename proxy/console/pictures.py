"""What a kept image body is, for the console to say beside it: its format and its dimensions.

Owns Picture and describe(). Pillow reads the header only, from bytes already in memory (as the shadow
comparison does, proxy/shadow/compare.py). Pure: no I/O.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

__all__ = ["Picture", "describe"]


@dataclass(frozen=True, slots=True)
class Picture:
    format: str  # "PNG", "JPEG", ...
    width: int
    height: int
    size: int  # bytes

    def __str__(self) -> str:
        return f"{self.format} {self.width}×{self.height}"


def describe(data: bytes) -> Picture | None:
    """The picture's facts, or None when the bytes are not an image Pillow can read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return Picture(image.format or "unknown", image.width, image.height, len(data))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
