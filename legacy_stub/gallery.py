"""The in-memory record of generations and their image files (pure: no I/O, no aiohttp).

Owns ids, names, urls, checksums, newest-first order and the memory bound; does not paint or queue.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "Gallery",
    "Generation",
    "StoredImage",
    "build_generation",
    "new_generation_id",
    "parse_size",
]

FILES_PREFIX = "/api/images/files/"
CONTENT_TYPE = "image/png"


@dataclass(frozen=True, slots=True)
class StoredImage:
    name: str
    width: int
    height: int
    sha256: str
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": FILES_PREFIX + self.name,
            "content_type": CONTENT_TYPE,
            "width": self.width,
            "height": self.height,
            "bytes": len(self.data),
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class Generation:
    id: str
    created: int
    prompt: str
    size: str
    images: tuple[StoredImage, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "prompt": self.prompt,
            "size": self.size,
            "images": [image.to_json() for image in self.images],
        }


def new_generation_id() -> str:
    return "leg_" + uuid.uuid4().hex


def parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


def build_generation(
    *, generation_id: str, created: int, prompt: str, size: str, pngs: Sequence[bytes]
) -> Generation:
    width, height = parse_size(size)
    images = tuple(
        StoredImage(
            name=f"{generation_id}-{index}.png",
            width=width,
            height=height,
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
        )
        for index, data in enumerate(pngs)
    )
    return Generation(id=generation_id, created=created, prompt=prompt, size=size, images=images)


class Gallery:
    """Generations in insertion order (newest last) and their files by name, bounded in count."""

    def __init__(self, max_generations: int) -> None:
        self._max = max_generations
        self._generations: OrderedDict[str, Generation] = OrderedDict()
        self._files: dict[str, StoredImage] = {}

    def add(self, generation: Generation) -> None:
        self._generations[generation.id] = generation
        for image in generation.images:
            self._files[image.name] = image
        while len(self._generations) > self._max:
            _, evicted = self._generations.popitem(last=False)
            for image in evicted.images:
                self._files.pop(image.name, None)

    def get(self, generation_id: str) -> Generation | None:
        return self._generations.get(generation_id)

    def file(self, name: str) -> StoredImage | None:
        return self._files.get(name)

    def newest(self, limit: int) -> list[Generation]:
        """The `limit` most recently stored generations, newest first."""
        items: list[Generation] = []
        for generation in reversed(self._generations.values()):
            if len(items) >= limit:
                break
            items.append(generation)
        return items

    def __len__(self) -> int:
        return len(self._generations)
