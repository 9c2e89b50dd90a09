"""The ports of the image service: what the use cases need from the outside world, as Protocols.

Adapters implement them (local and AWS stores, local and OpenAI generators); tests use in-memory fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from imageservice.domain.idempotency import Claim, ClaimResult, ClaimTerms, IdempotencyRecord
from imageservice.domain.model import GeneratedImage, Generation, GenerationRequest

__all__ = ["BlobInfo", "BlobStore", "ImageGenerator", "ImageRepository"]


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

    async def claim(self, terms: ClaimTerms) -> ClaimResult:
        """One conditional write: take the key unless a live record holds it; then return that record.

        A live record held by `terms.owner` is our own claim (a retried write whose first attempt
        landed): it is returned as the claim, never as someone else's record."""
        ...

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        """Write the generation and (when claimed) mark the key completed, all or nothing."""
        ...

    async def release(self, claim: Claim) -> None:
        """Drop an in-progress claim held by this owner; a no-op when it is gone or no longer ours."""
        ...

    async def get(self, generation_id: str) -> Generation | None: ...

    async def list_recent(self, limit: int) -> list[Generation]: ...

    # ---- for `reconcile`: full scans and repairs, never on a request's path

    async def all_generations(self) -> list[Generation]: ...

    async def delete_generation(self, generation_id: str) -> None:
        """Idempotent: deleting a missing generation is not an error."""
        ...

    async def all_keys(self) -> list[IdempotencyRecord]: ...

    async def drop_key(self, record: IdempotencyRecord) -> bool:
        """Delete the key only if it is still exactly this record (owner, status, generation);
        returns whether it was deleted."""
        ...
