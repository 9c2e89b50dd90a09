"""The first step of the saga: turn an Idempotency-Key into this request's claim, or into a replay.

Owns the claim's terms (a fresh owner token per request, the generation id reserved for its saga,
the key's lifetimes from the Policy) and what a live record of another request means: 409 while it
is in progress, 422 for another body, or the finished generation to answer with again. A claim whose
write may have landed without an answer goes to the Settler, which releases it if it is ours.
Does not generate, store or undo anything (services.py, persist.py and settle.py do).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from imageservice.domain.errors import InProgress, KeyReused, StorageFailure, StorageOutcomeUnknown
from imageservice.domain.idempotency import Claim, ClaimTerms, IdempotencyRecord, check_existing
from imageservice.domain.model import Generation, GenerationRequest
from imageservice.domain.ports import ImageRepository
from imageservice.metrics import ServiceMetrics
from imageservice.policy import Policy
from imageservice.settle import Settler
from imageservice.storage_errors import as_storage_failure

__all__ = ["KeyClaimer"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyClaimer:
    repository: ImageRepository
    metrics: ServiceMetrics
    settler: Settler
    policy: Policy
    clock: Callable[[], float]

    async def claim(
        self, key: str, request: GenerationRequest, generation_id: str
    ) -> tuple[Claim | None, Generation | None]:
        """(our claim, None) when the key is ours now; (None, the generation) to replay."""
        fingerprint = request.fingerprint()
        terms = ClaimTerms(
            key,
            fingerprint,
            owner=uuid.uuid4().hex,  # the token that says "this claim is mine", even on a retried write
            now=self.clock(),
            ttl_s=self.policy.idempotency_ttl_s,
            in_progress_ttl_s=self.policy.in_progress_ttl_s,
            generation_id=generation_id,
        )
        try:
            async with as_storage_failure("claiming the idempotency key"):
                result = await self.repository.claim(terms)
        except StorageOutcomeUnknown:
            # Our claim may have landed with its answer lost: release it (only if it is ours) later.
            self.settler.release_later(Claim(IdempotencyRecord.claimed(terms)))
            raise
        if result.claim is not None:
            return result.claim, None
        if result.existing is None:
            raise StorageFailure("the idempotency store gave no answer")
        try:
            generation_id = check_existing(result.existing, fingerprint)
        except (KeyReused, InProgress) as exc:
            self.metrics.rejected.labels(reason=exc.code).inc()
            raise
        async with as_storage_failure("reading the stored generation"):
            stored = await self.repository.get(generation_id)
        if stored is None:
            raise StorageFailure("the idempotency record points at a generation that is gone")
        return None, stored
