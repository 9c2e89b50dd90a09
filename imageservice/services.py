"""The use cases of the image service: generate (a saga with compensation), get, list, file, reconcile.

Entry points call these and only translate. The saga: claim the idempotency key → generate → store
each blob → write the metadata and complete the key. A failure at any step (or a cancellation) undoes
what was done, in reverse order: delete the blobs, release the key. Compensations are retried; what
still fails is logged and counted, and `reconcile` (reconcile.py) later removes blobs no metadata references.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from imageservice.compensation import Compensator
from imageservice.domain.model import (
    ID_PREFIX,
    Claim,
    DomainError,
    Generation,
    GenerationRequest,
    GeneratorFailure,
    InProgress,
    KeyReused,
    NotFound,
    StorageFailure,
    StoragePermissionDenied,
    check_existing,
    is_blob_name,
)
from imageservice.domain.ports import BlobStore, ImageGenerator, ImageRepository
from imageservice.limits import Limiter
from imageservice.metrics import ServiceMetrics
from imageservice.reconcile import ReconcileReport, reconcile

_log = structlog.get_logger("imageservice.saga")


@dataclass(frozen=True, slots=True)
class Policy:
    idempotency_ttl_s: float = 24 * 3600
    in_progress_ttl_s: float = 900.0  # a crashed holder frees its key after this long
    compensation_attempts: int = 3
    compensation_backoff_s: float = 0.05


@dataclass(frozen=True, slots=True)
class Outcome:
    generation: Generation
    replayed: bool = False
    stored: bool = True


@asynccontextmanager
async def _storage(what: str) -> AsyncIterator[None]:
    """A store that fails (network, throttling, disk) is the service's 503, never a raw 500.

    A refusal of our credentials arrives from the adapters as StoragePermissionDenied (a DomainError,
    logged there with the resource) and passes through unchanged.
    """
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        _log.warning("storage_failed", operation=what, error=type(exc).__name__)
        raise StorageFailure(f"storage is unavailable ({what})") from exc


def new_generation_id() -> str:
    return f"{ID_PREFIX}{uuid.uuid4().hex}"


class GenerationService:
    def __init__(
        self,
        *,
        generator: ImageGenerator,
        blobs: BlobStore,
        repository: ImageRepository,
        limiter: Limiter,
        metrics: ServiceMetrics,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_generation_id,
    ) -> None:
        self.generator = generator
        self.blobs = blobs
        self.repository = repository
        self.limiter = limiter
        self.metrics = metrics
        self.policy = policy or Policy()
        self._clock = clock
        self._new_id = new_id
        self._persisting: set[asyncio.Future[Outcome]] = set()
        self._undo = Compensator(
            metrics, attempts=self.policy.compensation_attempts, backoff_s=self.policy.compensation_backoff_s
        )

    # ------------------------------------------------------------ generate

    async def generate(
        self, request: GenerationRequest, *, idempotency_key: str | None = None, shadow: bool = False
    ) -> Outcome:
        async with self.limiter.ticket() as ticket:
            if shadow:  # a comparison run for the proxy: no key, nothing stored
                async with ticket.slot():
                    generation, _ = await self._generate(request)
                return Outcome(generation, stored=False)
            claim: Claim | None = None
            if idempotency_key is not None:
                claim, replay = await self._claim(idempotency_key, request)
                if replay is not None:
                    self.metrics.idempotent_replays.inc()
                    return Outcome(replay, replayed=True)
            try:
                async with ticket.slot():
                    generation, blobs = await self._generate(request)
            except BaseException as exc:
                await self._compensate([], claim, cause=exc)
                raise
            # Once the pictures exist, persisting them runs to its end even if the caller goes away:
            # a cancelled metadata write could still commit in its thread after we deleted its blobs.
            persist = asyncio.ensure_future(self._persist(generation, blobs, claim))
            self._persisting.add(persist)
            persist.add_done_callback(self._forget)
            return await asyncio.shield(persist)

    def _forget(self, task: asyncio.Future[Outcome]) -> None:
        self._persisting.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here: the caller may be gone, the saga already logged it

    async def _persist(
        self, generation: Generation, blobs: list[tuple[str, bytes]], claim: Claim | None
    ) -> Outcome:
        attempted: list[str] = []
        try:
            await self._store(blobs, attempted)
            await self._complete(generation.complete(), claim)
        except BaseException as exc:
            await self._compensate(attempted, claim, cause=exc)
            raise
        self.metrics.images.inc(len(attempted))
        _log.info(
            "generation_completed",
            generation_id=generation.id,
            images=len(attempted),
            keyed=claim is not None,
        )
        return Outcome(generation.complete())

    async def drain(self) -> None:
        """Wait for sagas still persisting (called before the stores close on shutdown)."""
        if self._persisting:
            await asyncio.gather(*self._persisting, return_exceptions=True)

    async def _claim(self, key: str, request: GenerationRequest) -> tuple[Claim | None, Generation | None]:
        fingerprint = request.fingerprint()
        async with _storage("claiming the idempotency key"):
            result = await self.repository.claim(
                key,
                fingerprint,
                owner=uuid.uuid4().hex,
                now=self._clock(),
                ttl_s=self.policy.idempotency_ttl_s,
                in_progress_ttl_s=self.policy.in_progress_ttl_s,
            )
        if result.claim is not None:
            return result.claim, None
        if result.existing is None:
            raise StorageFailure("the idempotency store gave no answer")
        try:
            generation_id = check_existing(result.existing, fingerprint)
        except (KeyReused, InProgress) as exc:
            self.metrics.rejected.labels(reason=exc.code).inc()
            raise
        async with _storage("reading the stored generation"):
            stored = await self.repository.get(generation_id)
        if stored is None:
            raise StorageFailure("the idempotency record points at a generation that is gone")
        return None, stored

    async def _generate(self, request: GenerationRequest) -> tuple[Generation, list[tuple[str, bytes]]]:
        generation = Generation.start(self._new_id(), request, now=self._clock())
        name = self.generator.name
        started = time.perf_counter()
        outcome = "ok"
        try:
            images = await self.generator.generate(request)
            return generation.with_images(images)
        except DomainError as exc:
            outcome = exc.code
            raise
        except Exception as exc:
            outcome = GeneratorFailure.code
            _log.exception("generator_crashed", generator=name)
            raise GeneratorFailure("the image generator failed") from exc
        except BaseException:
            outcome = "cancelled"
            raise
        finally:
            self.metrics.generations.labels(generator=name, outcome=outcome).inc()
            self.metrics.generation_duration.labels(generator=name).observe(time.perf_counter() - started)

    async def _store(self, blobs: list[tuple[str, bytes]], attempted: list[str]) -> None:
        attempted.extend(name for name, _ in blobs)  # a failed put may still have landed: undo them all
        results = await asyncio.gather(
            *(self.blobs.put(name, data, "image/png") for name, data in blobs), return_exceptions=True
        )
        denied = next((r for r in results if isinstance(r, StoragePermissionDenied)), None)
        if denied is not None:
            raise denied  # a misconfiguration, not an outage: say so rather than "storing failed"
        for result in results:
            if isinstance(result, BaseException):
                _log.warning("blob_store_failed", error=type(result).__name__)
                raise StorageFailure("storing the images failed") from result

    async def _complete(self, generation: Generation, claim: Claim | None) -> None:
        try:
            await self.repository.complete(generation, claim, now=self._clock())
        except StoragePermissionDenied:
            raise  # refused before anything was written: nothing can have landed
        except Exception as exc:
            # The write may have landed before the error reached us; deleting its blobs would break it.
            try:
                landed = await self.repository.get(generation.id)
            except Exception:
                landed = None
            if landed is not None:
                _log.warning("metadata_write_error_but_landed", generation_id=generation.id)
                return
            raise StorageFailure("saving the generation failed") from exc

    # ------------------------------------------------------------ compensation

    async def _compensate(self, attempted: list[str], claim: Claim | None, *, cause: BaseException) -> None:
        _log.info(
            "saga_compensating", cause=type(cause).__name__, blobs=len(attempted), key_held=claim is not None
        )
        for name in reversed(attempted):
            await self._undo.run("delete_blob", functools.partial(self.blobs.delete, name), subject=name)
        if claim is not None:
            await self._undo.run(
                "release_key", functools.partial(self.repository.release, claim), subject="key"
            )

    # ------------------------------------------------------------ reads

    async def get(self, generation_id: str) -> Generation:
        generation = None
        if generation_id.startswith(ID_PREFIX):
            async with _storage("reading the generation"):
                generation = await self.repository.get(generation_id)
        if generation is None:
            raise NotFound(f"no generation with id {generation_id!r}")
        return generation

    async def list_recent(self, limit: int) -> list[Generation]:
        async with _storage("listing generations"):
            return await self.repository.list_recent(limit)

    async def file(self, name: str) -> bytes:
        data = None
        if is_blob_name(name):
            async with _storage("reading the image"):
                data = await self.blobs.get(name)
        if data is None:
            raise NotFound(f"no image named {name!r}")
        return data

    # ------------------------------------------------------------ maintenance

    async def reconcile(self, *, dry_run: bool, min_age_s: float) -> ReconcileReport:
        return await reconcile(
            self.blobs, self.repository, now=self._clock(), dry_run=dry_run, min_age_s=min_age_s
        )
