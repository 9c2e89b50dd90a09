"""`reconcile` on the real stores (SQLite + files, DynamoDB + S3 on moto over HTTP): both directions.

The scene is what the faults of issue 12 left behind before the fix: a generation whose images were
deleted by a compensation although its write had landed (its key replays dead links), a completed key
whose generation is gone, blobs nobody references, and a claim whose holder died.
"""

from __future__ import annotations

import time

import pytest

from imageservice.domain.errors import StorageFailure
from imageservice.domain.idempotency import ClaimTerms
from imageservice.domain.model import Generation, GenerationRequest, Size
from imageservice.services import GenerationService
from tests.integration.imageservice.conftest import Backend
from tests.unit.imageservice.fakes import Clock, FakeGenerator, make_service


def req(prompt: str) -> GenerationRequest:
    return GenerationRequest(prompt, 2, Size(256, 256))


async def names(backend: Backend) -> list[str]:
    return sorted(blob.name for blob in await backend.blobs.list_blobs())


async def generated(service: GenerationService, prompt: str, key: str | None = None) -> Generation:
    return (await service.generate(req(prompt), idempotency_key=key)).generation


async def test_reconcile_repairs_both_directions_and_a_dry_run_only_reports(backend: Backend) -> None:
    clock = Clock(time.time())  # blob ages come from the stores' real clocks
    service = make_service(blobs=backend.blobs, repository=backend.repository, clock=clock)
    good = await generated(service, "kept", "key-good")
    broken = await generated(service, "broken", "key-broken")
    await backend.blobs.delete(broken.images[0].name)  # what the old compensation did to a landed write
    gone = await generated(service, "gone", "key-gone")
    await backend.repository.delete_generation(gone.id)  # a completed key pointing at nothing
    orphan = "img_" + "0" * 32 + "_0.png"
    await backend.blobs.put(orphan, b"left behind", "image/png")
    await backend.repository.claim(ClaimTerms(
        "key-dead", "fp", owner="dead", now=clock.now, ttl_s=3600, in_progress_ttl_s=60,
        generation_id="img_" + "1" * 32,
    ))  # fmt: skip
    clock.now += 120  # every blob is older than min_age_s, the dead holder's window has passed
    with pytest.raises(StorageFailure, match="gone"):  # the dangling key cannot even replay
        await service.generate(req("gone"), idempotency_key="key-gone")
    before = await names(backend)

    dry = await service.reconcile(dry_run=True, min_age_s=60)

    expected_orphans = sorted([orphan, broken.images[1].name, *(image.name for image in gone.images)])
    assert sorted(dry.orphans) == expected_orphans
    assert dry.broken_generations == [broken.id]
    assert sorted(dry.dangling_keys) == ["key-broken", "key-gone"]
    assert dry.abandoned_claims == ["key-dead"]
    assert (dry.removed, dry.deleted_generations, dry.freed_keys, dry.failed) == ([], [], [], [])
    assert await names(backend) == before
    assert await backend.repository.get(broken.id) is not None

    done = await service.reconcile(dry_run=False, min_age_s=60)

    assert sorted(done.removed) == expected_orphans
    assert done.deleted_generations == [broken.id]
    assert sorted(done.freed_keys) == ["key-broken", "key-dead", "key-gone"]
    assert done.failed == []
    assert await names(backend) == sorted(image.name for image in good.images)
    assert await backend.repository.get(broken.id) is None
    assert await backend.repository.held_keys() == []
    # The keys work again: the broken one generates anew (its files served), the good one still replays.
    retried = await service.generate(req("broken"), idempotency_key="key-broken")
    assert not retried.replayed
    for image in retried.generation.images:
        assert len(await service.file(image.name)) == image.bytes
    assert (await service.generate(req("kept"), idempotency_key="key-good")).replayed
    clock.now += 120
    again = await service.reconcile(dry_run=False, min_age_s=60)
    assert (again.orphans, again.broken_generations, again.dangling_keys, again.abandoned_claims) == (
        [], [], [], [],
    )  # fmt: skip


async def test_a_claim_within_its_window_is_freed_only_when_asked_to_treat_it_as_stale(
    backend: Backend,
) -> None:
    clock = Clock(time.time())
    service = make_service(generator=FakeGenerator(), blobs=backend.blobs, repository=backend.repository,
                           clock=clock)  # fmt: skip
    await backend.repository.claim(
        ClaimTerms("key-slow", "fp", owner="alive?", now=clock.now, ttl_s=3600, in_progress_ttl_s=900)
    )
    clock.now += 300

    assert (await service.reconcile(dry_run=False, min_age_s=60)).abandoned_claims == []
    assert await backend.repository.held_keys() == ["key-slow"]
    freed = await service.reconcile(dry_run=False, min_age_s=60, stale_claim_s=120)
    assert freed.freed_keys == ["key-slow"]
    assert await backend.repository.held_keys() == []
