"""The ports of the image service: what the use cases need from the outside world, as Protocols.

Adapters implement them (local and AWS stores, local and OpenAI generators); tests use in-memory fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from imageservice.domain.model import (
    Claim,
    ClaimResult,
    GeneratedImage,
    Generation,
    GenerationRequest,
)


class ImageGenerator(Protocol):
    """Paints n images of the requested size; raises GeneratorFailure subclasses on failure."""

    @property
    def name(self) -> str: ...

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]: ...


@dataclass(frozen=True, slots=True)
class BlobInfo:
    name: str
    modified: float  # unix seconds


class BlobStore(Protocol):
    async def put(self, name: str, data: bytes, content_type: str) -> None: ...

    async def get(self, name: str) -> bytes | None: ...

    async def delete(self, name: str) -> None:
        """Idempotent: deleting a missing blob is not an error."""
        ...

    async def list_blobs(self) -> list[BlobInfo]: ...


class ImageRepository(Protocol):
    """Generation metadata and idempotency records, in one store so that completing is atomic."""

    async def claim(
        self, key: str, fingerprint: str, *, owner: str, now: float, ttl_s: float, in_progress_ttl_s: float
    ) -> ClaimResult:
        """One conditional write: take the key unless a live record holds it; then return that record."""
        ...

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        """Write the generation and (when claimed) mark the key completed, all or nothing."""
        ...

    async def release(self, claim: Claim) -> None:
        """Drop an in-progress claim held by this owner; a no-op when it is gone or no longer ours."""
        ...

    async def get(self, generation_id: str) -> Generation | None: ...

    async def list_recent(self, limit: int) -> list[Generation]: ...
