"""Reconcile's rules on in-memory stores: what is young is left alone, and a key stays held while its
saga still has something in the stores."""

from __future__ import annotations

from imageservice.adapters.local_generator import paint
from imageservice.domain.idempotency import ClaimTerms
from imageservice.domain.model import GeneratedImage, Generation, GenerationRequest, Size
from tests.unit.imageservice.fakes import Clock, InMemoryBlobStore, InMemoryRepository, make_service

RESERVED = "img_" + "2" * 32


def req() -> GenerationRequest:
    return GenerationRequest("a quiet pond", 1, Size(256, 256))


async def test_an_abandoned_claim_stays_held_while_young_blobs_of_its_generation_remain() -> None:
    clock = Clock(10_000.0)
    blobs, repository = InMemoryBlobStore(), InMemoryRepository()
    service = make_service(blobs=blobs, repository=repository, clock=clock)
    await repository.claim(
        ClaimTerms(
            "key-1",
            "fp",
            owner="dead",
            now=clock.now - 1000,
            ttl_s=3600,
            in_progress_ttl_s=60,
            generation_id=RESERVED,
        )
    )
    await blobs.put(f"{RESERVED}_0.png", b"png", "image/png")
    blobs.modified[f"{RESERVED}_0.png"] = clock.now - 10  # young: its saga may still be storing

    report = await service.reconcile(dry_run=False, min_age_s=60)

    assert report.abandoned_claims == ["key-1"]
    assert report.kept_claims == ["key-1"]
    assert report.freed_keys == []
    assert await repository.held_keys() == ["key-1"]

    blobs.modified[f"{RESERVED}_0.png"] = clock.now - 120  # later: an orphan, removed, and the key freed
    later = await service.reconcile(dry_run=False, min_age_s=60)
    assert later.removed == [f"{RESERVED}_0.png"]
    assert later.freed_keys == ["key-1"]


async def test_a_young_generation_with_missing_blobs_is_left_to_its_running_saga() -> None:
    clock = Clock(10_000.0)
    repository = InMemoryRepository()
    service = make_service(repository=repository, clock=clock)
    image = GeneratedImage(paint("a quiet pond", 0, Size(256, 256)), 256, 256)
    generation, _ = Generation.start(RESERVED, req(), now=clock.now - 5).with_images([image])
    await repository.complete(generation.complete(), None, now=clock.now)

    report = await service.reconcile(dry_run=False, min_age_s=60)

    assert report.broken_generations == []
    assert await repository.get(RESERVED) is not None
