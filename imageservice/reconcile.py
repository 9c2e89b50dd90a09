"""Reconcile: find (and remove) blobs that no generation references.

They are what a failed compensation or a crash between "store blobs" and "write metadata" leaves
behind. Blobs younger than `min_age_s` are skipped: they may belong to a saga that is still running.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from imageservice.domain.model import Generation, generation_id_of
from imageservice.domain.ports import BlobStore, ImageRepository

_log = structlog.get_logger("imageservice.reconcile")


@dataclass(slots=True)
class ReconcileReport:
    orphans: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def reconcile(
    blobs: BlobStore, repository: ImageRepository, *, now: float, dry_run: bool, min_age_s: float
) -> ReconcileReport:
    report = ReconcileReport()
    known: dict[str, Generation | None] = {}
    for blob in await blobs.list_blobs():
        if now - blob.modified < min_age_s:
            continue
        generation_id = generation_id_of(blob.name)  # names we did not write (temp files) are orphans too
        if generation_id is not None and generation_id not in known:
            known[generation_id] = await repository.get(generation_id)
        owner = known.get(generation_id) if generation_id else None
        if owner is not None and owner.references(blob.name):
            continue
        report.orphans.append(blob.name)
        if dry_run:
            continue
        try:
            await blobs.delete(blob.name)
        except Exception as exc:
            _log.warning("reconcile_delete_failed", name=blob.name, error=type(exc).__name__)
            report.failed.append(blob.name)
        else:
            report.removed.append(blob.name)
    _log.info("reconciled", dry_run=dry_run, orphans=len(report.orphans), removed=len(report.removed))
    return report
