"""The second half of the saga: store the blobs, write the metadata (completing the key), and decide
what a failed metadata write means before anything is undone.

"When in doubt, keep the images." A write that errors may still have landed (its acknowledgement was
lost). So the generation is read back, a few times: found → the request succeeded after all; a read
that answers "absent" → it did not land, undo as usual; no read answers → the outcome is unknown: the
blobs and the key are kept and the Settler (settle.py) keeps reading in the background, and the
client gets 503 `storage_unavailable`. Its retry with the same key answers 409 until that is
settled, then replays the generation (landed) or generates again (not landed).
Does not claim keys (claims.py does) or call the generator (services.py does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from imageservice.domain.errors import StorageFailure, StoragePermissionDenied
from imageservice.domain.idempotency import Claim
from imageservice.domain.model import Generation
from imageservice.domain.ports import BlobStore, ImageRepository
from imageservice.metrics import ServiceMetrics
from imageservice.policy import Policy
from imageservice.settle import Settler

__all__ = ["Persister"]

_log = structlog.get_logger("imageservice.saga")


class CommitUnknown(Exception):
    """The metadata write failed and no read could tell whether it landed."""


class Persister:
    def __init__(
        self,
        *,
        blobs: BlobStore,
        repository: ImageRepository,
        metrics: ServiceMetrics,
        settler: Settler,
        policy: Policy,
        clock: Callable[[], float],
    ) -> None:
        self._blobs = blobs
        self._repository = repository
        self._metrics = metrics
        self._settler = settler
        self._policy = policy
        self._clock = clock

    async def persist(
        self, generation: Generation, blobs: list[tuple[str, bytes]], claim: Claim | None
    ) -> None:
        names = [name for name, _ in blobs]  # a failed put may still have landed: undo them all
        try:
            await self._store(blobs)
            await self._commit(generation, claim)
        except CommitUnknown as exc:
            self._metrics.uncertain_commits.labels(resolution="unknown").inc()
            self._settler.settle_later(generation.id, names, claim)
            raise StorageFailure(
                "saving the generation failed and whether it landed is not known yet; "
                "retry with the same Idempotency-Key"
            ) from exc
        except BaseException as exc:
            await self._settler.compensate(names, claim, cause=exc)
            raise
        self._metrics.images.inc(len(names))

    async def _store(self, blobs: list[tuple[str, bytes]]) -> None:
        results = await asyncio.gather(
            *(self._blobs.put(name, data, "image/png") for name, data in blobs), return_exceptions=True
        )
        denied = next((r for r in results if isinstance(r, StoragePermissionDenied)), None)
        if denied is not None:
            raise denied  # a misconfiguration, not an outage: say so rather than "storing failed"
        for result in results:
            if isinstance(result, BaseException):
                _log.warning("blob_store_failed", error=type(result).__name__)
                raise StorageFailure("storing the images failed") from result

    async def _commit(self, generation: Generation, claim: Claim | None) -> None:
        try:
            await self._repository.complete(generation, claim, now=self._clock())
            return
        except StoragePermissionDenied:
            raise  # refused before anything was written: nothing can have landed
        except Exception as exc:
            error = exc
        landed = await self._read_back(generation.id)
        if landed is None:
            raise CommitUnknown(f"the write of {generation.id} failed and cannot be read back") from error
        self._metrics.uncertain_commits.labels(resolution="landed" if landed else "not_landed").inc()
        if not landed:
            raise StorageFailure("saving the generation failed") from error
        _log.warning(
            "metadata_write_error_but_landed", generation_id=generation.id, error=type(error).__name__
        )

    async def _read_back(self, generation_id: str) -> bool | None:
        """True: it is there; False: a read answered that it is not; None: no read answered."""
        for attempt in range(max(1, self._policy.verify_attempts)):
            if attempt:
                await asyncio.sleep(self._policy.compensation_backoff_s * 2 ** (attempt - 1))
            try:
                return await self._repository.get(generation_id) is not None
            except Exception as exc:
                _log.warning("metadata_read_back_failed", generation_id=generation_id, attempt=attempt + 1,
                             error=type(exc).__name__)  # fmt: skip
        return None
