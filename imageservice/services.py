"""The use cases of the image service: generate (a saga with compensation), get, list, file, reconcile.

Entry points call these and only translate. The saga: claim the idempotency key (claims.py) →
generate → store each blob → write the metadata and complete the key (persist.py). A failure at any
step (or a cancellation) undoes what was done, in reverse order: delete the blobs, release the key
(settle.py). Compensations are retried; a key release that still fails goes on in the background
until it lands; a metadata write whose outcome is unknown keeps its blobs and key until it is
settled. What is still left is logged and counted, and `reconcile` (reconcile.py) repairs it.
A store that fails is the caller's 503, never a raw 500 (storage_errors.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from imageservice.claims import KeyClaimer
from imageservice.domain.errors import DomainError, GeneratorFailure, NotFound
from imageservice.domain.idempotency import Claim
from imageservice.domain.model import ID_PREFIX, Generation, GenerationRequest, is_blob_name
from imageservice.domain.ports import BlobStore, ImageGenerator, ImageRepository
from imageservice.limits import Limiter
from imageservice.metrics import ServiceMetrics
from imageservice.persist import Persister
from imageservice.policy import Policy
from imageservice.reconcile import ReconcileReport, reconcile
from imageservice.settle import Settler
from imageservice.storage_errors import as_storage_failure

__all__ = ["GenerationService", "Outcome", "new_generation_id"]
_log = structlog.get_logger("imageservice.saga")


@dataclass(frozen=True, slots=True)
class Outcome:
    generation: Generation
    replayed: bool = False
    stored: bool = True


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
        self.settler = Settler(blobs=blobs, repository=repository, metrics=metrics, policy=self.policy)
        self._claims = KeyClaimer(
            repository=repository, metrics=metrics, settler=self.settler, policy=self.policy, clock=clock
        )
        self._persister = Persister(
            blobs=blobs,
            repository=repository,
            metrics=metrics,
            settler=self.settler,
            policy=self.policy,
            clock=clock,
        )

    # ------------------------------------------------------------ generate

    async def generate(
        self, request: GenerationRequest, *, idempotency_key: str | None = None, shadow: bool = False
    ) -> Outcome:
        generation_id = self._new_id()  # reserved before the claim, which records it
        async with self.limiter.ticket() as ticket:
            if shadow:  # a comparison run for the proxy: no key, nothing stored
                async with ticket.slot():
                    generation, _ = await self._generate(request, generation_id)
                return Outcome(generation, stored=False)
            claim: Claim | None = None
            if idempotency_key is not None:
                claim, replay = await self._claims.claim(idempotency_key, request, generation_id)
                if replay is not None:
                    self.metrics.idempotent_replays.inc()
                    return Outcome(replay, replayed=True)
            try:
                async with ticket.slot():
                    generation, blobs = await self._generate(request, generation_id)
            except BaseException as exc:
                await self.settler.compensate([], claim, cause=exc)
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
        completed = generation.complete()
        await self._persister.persist(completed, blobs, claim)
        _log.info(
            "generation_completed", generation_id=generation.id, images=len(blobs), keyed=claim is not None
        )
        return Outcome(completed)

    async def drain(self) -> None:
        """Before the stores close on shutdown: wait for sagas still persisting, then give background
        settling `Policy.shutdown_settle_s` to finish (what is left is logged and counted)."""
        if self._persisting:
            await asyncio.gather(*self._persisting, return_exceptions=True)
        await self.settler.drain(self.policy.shutdown_settle_s)

    async def _generate(
        self, request: GenerationRequest, generation_id: str
    ) -> tuple[Generation, list[tuple[str, bytes]]]:
        generation = Generation.start(generation_id, request, now=self._clock())
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

    # ------------------------------------------------------------ reads

    async def get(self, generation_id: str) -> Generation:
        generation = None
        if generation_id.startswith(ID_PREFIX):
            async with as_storage_failure("reading the generation"):
                generation = await self.repository.get(generation_id)
        if generation is None:
            raise NotFound(f"no generation with id {generation_id!r}")
        return generation

    async def list_recent(self, limit: int) -> list[Generation]:
        async with as_storage_failure("listing generations"):
            return await self.repository.list_recent(limit)

    async def file(self, name: str) -> bytes:
        data = None
        if is_blob_name(name):
            async with as_storage_failure("reading the image"):
                data = await self.blobs.get(name)
        if data is None:
            raise NotFound(f"no image named {name!r}")
        return data

    # ------------------------------------------------------------ maintenance

    async def reconcile(
        self, *, dry_run: bool, min_age_s: float, stale_claim_s: float | None = None
    ) -> ReconcileReport:
        """See reconcile.py. `stale_claim_s`: an in-progress claim taken longer ago than this counts as
        abandoned (default: only claims past their in-progress window)."""
        return await reconcile(
            self.blobs,
            self.repository,
            now=self._clock(),
            dry_run=dry_run,
            min_age_s=min_age_s,
            in_progress_ttl_s=self.policy.in_progress_ttl_s,
            stale_claim_s=stale_claim_s,
        )
