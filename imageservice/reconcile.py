"""Reconcile: make the blobs, the generation records and the idempotency keys agree again, both ways.

What it finds, and what it does about each (nothing at all with `dry_run`):
* blobs no generation references (`orphans`) — a failed compensation, a crash between storing the
  blobs and writing the metadata, temp files: removed.
* generations whose blobs are missing (`broken_generations`) — a compensation that deleted the
  blobs of a write that had landed after all, or a lost object: the record is deleted (and its
  surviving blobs with it, as orphans), so nobody is handed file URLs that 404.
* completed keys whose generation is missing (`dangling_keys`) — the key of such a record: dropped,
  so that a retry with the key generates again instead of failing or replaying dead links.
* in-progress claims whose holder is gone (`abandoned_claims`) — past their in-progress window, or
  taken more than `stale_claim_s` ago: dropped (`freed_keys`), but only once their saga left nothing
  behind (no blob of their reserved generation is left after this run), so that a late commit can
  never meet blobs that were deleted under it.
Everything younger than `min_age_s` is left alone: it may belong to a saga that is still running.
Does not run on a request's path and does not decide anything a running saga decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from imageservice.domain.idempotency import IdempotencyRecord, KeyStatus
from imageservice.domain.model import Generation, generation_id_of
from imageservice.domain.ports import BlobInfo, BlobStore, ImageRepository

__all__ = ["ReconcileReport", "reconcile"]

_T = TypeVar("_T")
_log = structlog.get_logger("imageservice.reconcile")


@dataclass(slots=True)
class ReconcileReport:
    orphans: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    broken_generations: list[str] = field(default_factory=list)
    deleted_generations: list[str] = field(default_factory=list)
    dangling_keys: list[str] = field(default_factory=list)
    abandoned_claims: list[str] = field(default_factory=list)
    freed_keys: list[str] = field(default_factory=list)
    kept_claims: list[str] = field(default_factory=list)  # abandoned, but blobs of theirs remain (young)
    failed: list[str] = field(default_factory=list)  # blob names, `generation:<id>`, `key:<key>`


@dataclass(frozen=True, slots=True)
class Age:
    now: float
    min_age_s: float
    in_progress_ttl_s: float
    stale_claim_s: float


async def reconcile(
    blobs: BlobStore,
    repository: ImageRepository,
    *,
    now: float,
    dry_run: bool,
    min_age_s: float,
    in_progress_ttl_s: float,
    stale_claim_s: float | None,
) -> ReconcileReport:
    age = Age(
        now, min_age_s, in_progress_ttl_s, in_progress_ttl_s if stale_claim_s is None else stale_claim_s
    )
    run = _Run(blobs, repository, dry_run=dry_run, age=age)
    listing = await blobs.list_blobs()
    generations = await repository.all_generations()
    await run.broken_generations(generations, {blob.name for blob in listing})
    await run.orphan_blobs(listing)
    await run.keys(await repository.all_keys(), {g.id for g in generations} - run.gone)
    report = run.report
    _log.info(
        "reconciled",
        dry_run=dry_run,
        orphans=len(report.orphans),
        removed=len(report.removed),
        broken_generations=len(report.broken_generations),
        dangling_keys=len(report.dangling_keys),
        abandoned_claims=len(report.abandoned_claims),
        freed_keys=len(report.freed_keys),
        failed=len(report.failed),
    )
    return report


class _Run:
    def __init__(self, blobs: BlobStore, repository: ImageRepository, *, dry_run: bool, age: Age) -> None:
        self.blobs, self.repository, self.dry_run, self.age = blobs, repository, dry_run, age
        self.report = ReconcileReport()
        self.gone: set[str] = set()  # generation ids without a usable record once this run is done
        self.remaining: set[str] = set()  # blob names still there once this run is done

    async def broken_generations(self, generations: list[Generation], present: set[str]) -> None:
        for generation in generations:
            if self.age.now - generation.created < self.age.min_age_s:
                continue  # its blobs may be listed before they were stored, its record after it landed
            if all(image.name in present for image in generation.images):
                continue
            self.report.broken_generations.append(generation.id)
            _log.warning("generation_without_blobs", generation_id=generation.id, dry_run=self.dry_run)
            if await self._repair(
                f"generation:{generation.id}", self.repository.delete_generation, generation.id
            ):
                self.gone.add(generation.id)
                if not self.dry_run:
                    self.report.deleted_generations.append(generation.id)

    async def orphan_blobs(self, listing: list[BlobInfo]) -> None:
        known: dict[str, Generation | None] = dict.fromkeys(self.gone)
        for blob in listing:
            self.remaining.add(blob.name)
            if self.age.now - blob.modified < self.age.min_age_s:
                continue
            generation_id = generation_id_of(blob.name)  # names we did not write (temp files) are orphans too
            if generation_id is not None and generation_id not in known:
                known[generation_id] = await self.repository.get(generation_id)
            owner = known.get(generation_id) if generation_id else None
            if owner is not None and owner.references(blob.name):
                continue
            self.report.orphans.append(blob.name)
            if await self._repair(blob.name, self.blobs.delete, blob.name):
                self.remaining.discard(blob.name)
                if not self.dry_run:
                    self.report.removed.append(blob.name)

    async def keys(self, records: list[IdempotencyRecord], listed: set[str]) -> None:
        for record in records:
            if record.status is KeyStatus.COMPLETED:
                if not record.is_live(self.age.now):
                    continue  # expired: a new claim takes it over, and the store's TTL removes it
                if await self._generation_exists(record.generation_id, listed):
                    continue
                self.report.dangling_keys.append(record.key)
            elif record.is_abandoned(
                self.age.now,
                in_progress_ttl_s=self.age.in_progress_ttl_s,
                stale_after_s=self.age.stale_claim_s,
            ):
                self.report.abandoned_claims.append(record.key)
                if self._left_behind(record, listed):
                    self.report.kept_claims.append(record.key)
                    continue
            else:
                continue
            if await self._repair(f"key:{record.key}", self.repository.drop_key, record) and not self.dry_run:
                self.report.freed_keys.append(record.key)

    async def _generation_exists(self, generation_id: str | None, listed: set[str]) -> bool:
        if generation_id is None or generation_id in self.gone:
            return False
        # Not in our listing: it may have landed since; a strongly consistent read decides.
        return generation_id in listed or await self.repository.get(generation_id) is not None

    def _left_behind(self, claim: IdempotencyRecord, listed: set[str]) -> bool:
        """Whether the claim's saga still has something in the stores (then its key stays held)."""
        generation_id = claim.generation_id
        if generation_id is None:
            return False  # a claim from before generation ids were reserved: nothing to look for
        if generation_id in listed:
            return True
        return any(generation_id_of(name) == generation_id for name in self.remaining)

    async def _repair(self, subject: str, action: Callable[[_T], Awaitable[object]], arg: _T) -> bool:
        """Run the repair unless this is a dry run; True when it was done (or would have been)."""
        if self.dry_run:
            return True
        try:
            result = await action(arg)
        except Exception as exc:
            _log.warning("reconcile_repair_failed", subject=subject, error=type(exc).__name__)
            self.report.failed.append(subject)
            return False
        return result is not False  # drop_key says False when the record changed meanwhile
