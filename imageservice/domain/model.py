"""Value objects and the generation aggregate of image generation.

Owns the rules (sizes, prompt length, blob names, request fingerprints); knows nothing about HTTP
status codes, storage engines or the clock (times are passed in). The errors it raises live in
errors.py, idempotency records in idempotency.py.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass, replace

from imageservice.domain.errors import GeneratorFailure, InvalidInput

__all__ = [
    "CONTENT_TYPE_PNG",
    "ID_PREFIX",
    "MAX_IMAGES",
    "MAX_PROMPT_CHARS",
    "SIZES",
    "GeneratedImage",
    "Generation",
    "GenerationRequest",
    "ImageRecord",
    "Size",
    "Status",
    "blob_name",
    "generation_id_of",
    "is_blob_name",
]

SIZES = ("256x256", "512x512", "1024x1024")
MAX_PROMPT_CHARS = 1000
MAX_IMAGES = 4
CONTENT_TYPE_PNG = "image/png"
ID_PREFIX = "img_"
_BLOB_NAME = re.compile(r"^(img_[0-9a-f]{32})_([0-9])\.png$")


# ---------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class Size:
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Size:
        if text not in SIZES:
            raise InvalidInput(f"size: must be one of {', '.join(SIZES)}")
        width, height = text.split("x")
        return cls(int(width), int(height))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    prompt: str
    n: int
    size: Size

    def __post_init__(self) -> None:
        if not 1 <= len(self.prompt) <= MAX_PROMPT_CHARS:
            raise InvalidInput(f"prompt: must be 1 to {MAX_PROMPT_CHARS} characters long")
        if not 1 <= self.n <= MAX_IMAGES:
            raise InvalidInput(f"n: must be between 1 and {MAX_IMAGES}")

    def fingerprint(self) -> str:
        """What an idempotency key is bound to: the request after defaults, not its raw bytes."""
        canonical = json.dumps({"prompt": self.prompt, "n": self.n, "size": str(self.size)}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """What a generator hands back: PNG bytes of exactly the requested size."""

    png: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ImageRecord:
    name: str
    width: int
    height: int
    bytes: int
    sha256: str
    content_type: str = CONTENT_TYPE_PNG


def blob_name(generation_id: str, index: int) -> str:
    return f"{generation_id}_{index}.png"


def is_blob_name(name: str) -> bool:
    """Names are ours alone; anything else (paths, dots, other ids) is refused before any I/O."""
    return _BLOB_NAME.match(name) is not None


def generation_id_of(name: str) -> str | None:
    match = _BLOB_NAME.match(name)
    return match.group(1) if match else None


# ---------------------------------------------------------------- the aggregate


class Status(enum.Enum):
    PENDING = "pending"
    GENERATED = "generated"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Generation:
    """An image generation: its request, its images, and how far it got."""

    id: str
    created: int
    prompt: str
    size: Size
    n: int
    images: tuple[ImageRecord, ...] = ()
    status: Status = Status.PENDING

    @classmethod
    def start(cls, generation_id: str, request: GenerationRequest, *, now: float) -> Generation:
        if not generation_id.startswith(ID_PREFIX):
            raise ValueError("generation ids carry the service's prefix")
        return cls(id=generation_id, created=int(now), prompt=request.prompt, size=request.size, n=request.n)

    def with_images(self, images: list[GeneratedImage]) -> tuple[Generation, list[tuple[str, bytes]]]:
        """Record the generator's output; returns the aggregate and the (name, bytes) blobs to store."""
        if self.status is not Status.PENDING:
            raise ValueError("images are added once")
        if len(images) != self.n:
            raise GeneratorFailure(f"the generator returned {len(images)} images instead of {self.n}")
        records, blobs = [], []
        for index, image in enumerate(images):
            if (image.width, image.height) != (self.size.width, self.size.height):
                raise GeneratorFailure("the generator returned an image of the wrong size")
            name = blob_name(self.id, index)
            digest = hashlib.sha256(image.png).hexdigest()
            records.append(ImageRecord(name, image.width, image.height, len(image.png), digest))
            blobs.append((name, image.png))
        return replace(self, images=tuple(records), status=Status.GENERATED), blobs

    def complete(self) -> Generation:
        if self.status is not Status.GENERATED:
            raise ValueError("only a generation with its images can complete")
        return replace(self, status=Status.COMPLETED)

    def references(self, name: str) -> bool:
        return any(image.name == name for image in self.images)
