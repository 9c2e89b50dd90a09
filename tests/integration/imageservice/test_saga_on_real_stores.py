"""The generation saga against the real stores: SQLite + files, and DynamoDB + S3 (moto over HTTP)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from imageservice.domain.errors import GeneratorFailure, InProgress, KeyReused, StorageFailure
from imageservice.domain.idempotency import ClaimTerms
from imageservice.domain.model import Generation, GenerationRequest, Size
from tests.integration.imageservice.conftest import Backend
from tests.unit.imageservice.fakes import (
    Clock,
    FakeGenerator,
    Faults,
    FlakyBlobStore,
    FlakyGenerator,
    FlakyRepository,
    make_service,
)


def req(prompt: str = "a harbour", n: int = 2) -> GenerationRequest:
    return GenerationRequest(prompt, n, Size(256, 256))


class World:
    def __init__(self, backend: Backend, *, gate: asyncio.Event | None = None) -> None:
        self.backend = backend
        self.faults = Faults()
        self.generator = FakeGenerator(gate=gate)
        self.registry = CollectorRegistry()
        self.clock = Clock()
        self.service = make_service(
            generator=FlakyGenerator(self.generator, self.faults),
            blobs=FlakyBlobStore(backend.blobs, self.faults),
            repository=FlakyRepository(backend.repository, self.faults),
            registry=self.registry,
            clock=self.clock,
        )

    async def blob_names(self) -> list[str]:
        return [blob.name for blob in await self.backend.blobs.list_blobs()]


async def test_a_completed_generation_is_readable_listed_and_replayable(backend: Backend) -> None:
    world = World(backend)
    first = await world.service.generate(req(), idempotency_key="key-1")
    world.clock.now += 1
    second = await world.service.generate(req(prompt="a lighthouse", n=1))

    assert await backend.repository.get(first.generation.id) == first.generation
    assert [g.id for g in await world.service.list_recent(10)] == [second.generation.id, first.generation.id]
    assert [g.id for g in await world.service.list_recent(1)] == [second.generation.id]
    for image in first.generation.images:
        assert len(await world.service.file(image.name)) == image.bytes
    replay = await world.service.generate(req(), idempotency_key="key-1")
    assert replay.replayed
    assert replay.generation == first.generation
    with pytest.raises(KeyReused):
        await world.service.generate(req(n=1), idempotency_key="key-1")
    assert world.generator.calls == 2
    assert await backend.repository.held_keys() == []


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("generate", GeneratorFailure),
        ("put", StorageFailure),
        ("complete", StorageFailure),
    ],
)
async def test_a_failure_injected_at_each_step_leaves_no_orphan_blob_and_no_held_key(
    backend: Backend, step: str, error: type[Exception]
) -> None:
    world = World(backend)
    world.faults.fail(step)

    with pytest.raises(error):
        await world.service.generate(req(n=3), idempotency_key="key-1")

    assert await world.blob_names() == []
    assert await backend.repository.held_keys() == []
    assert await backend.repository.list_recent(10) == []


async def test_a_put_that_fails_only_for_the_second_blob_still_removes_the_first(backend: Backend) -> None:
    world = World(backend)
    world.faults.remaining["put"] = 0
    original_hit = world.faults.hit

    def fail_second_put(step: str) -> None:
        original_hit(step)
        if step == "put" and world.faults.calls["put"] == 2:
            raise StorageFailure("second put failed")

    world.faults.hit = fail_second_put  # type: ignore[method-assign]
    with pytest.raises(StorageFailure):
        await world.service.generate(req(n=3), idempotency_key="key-1")

    assert await world.blob_names() == []
    assert await backend.repository.held_keys() == []


async def test_a_crash_between_storing_and_saving_is_cleaned_by_reconcile(backend: Backend) -> None:
    world = World(backend)
    kept = await world.service.generate(req(n=1))
    # The process dies after the blobs are stored and before the metadata is written: no compensation
    # runs, the key stays in progress and the blobs have no metadata.
    crashed = Generation.start("img_" + "c" * 32, req(), now=world.clock.now)
    crashed, blobs = crashed.with_images(await world.generator.generate(req()))
    await backend.repository.claim(
        ClaimTerms(
            "key-crash",
            req().fingerprint(),
            owner="dead",
            now=world.clock.now,
            ttl_s=3600,
            in_progress_ttl_s=300,
        )
    )
    for name, data in blobs:
        await backend.blobs.put(name, data, "image/png")
    world.clock.now += 7200  # long after the crash (moto's LastModified is the real time)

    dry = await world.service.reconcile(dry_run=True, min_age_s=0)
    assert sorted(dry.orphans) == sorted(name for name, _ in blobs)
    assert dry.removed == []
    assert len(await world.blob_names()) == 3

    report = await world.service.reconcile(dry_run=False, min_age_s=0)

    assert sorted(report.removed) == sorted(name for name, _ in blobs)
    assert await world.blob_names() == [kept.generation.images[0].name]
    # The dead request's key frees itself once its in-progress window has passed.
    retried = await world.service.generate(req(), idempotency_key="key-crash")
    assert not retried.replayed


async def test_concurrent_requests_with_one_key_generate_once(backend: Backend) -> None:
    gate = asyncio.Event()
    world = World(backend, gate=gate)
    first = asyncio.create_task(world.service.generate(req(), idempotency_key="key-1"))
    await asyncio.wait_for(world.generator.started.wait(), 10)

    rivals = await asyncio.gather(
        *(world.service.generate(req(), idempotency_key="key-1") for _ in range(4)), return_exceptions=True
    )
    gate.set()
    done = await asyncio.wait_for(first, 10)
    replay = await world.service.generate(req(), idempotency_key="key-1")

    assert all(isinstance(rival, InProgress) for rival in rivals)
    assert replay.replayed
    assert replay.generation == done.generation
    assert world.generator.calls == 1


async def test_racing_claims_on_the_store_let_exactly_one_win(backend: Backend) -> None:
    results = await asyncio.gather(
        *(
            backend.repository.claim(
                ClaimTerms("key-race", "fp", owner=f"o{i}", now=1000.0, ttl_s=60, in_progress_ttl_s=30)
            )
            for i in range(8)
        )
    )
    assert sum(result.claim is not None for result in results) == 1
    assert all(result.existing is not None for result in results if result.claim is None)


async def test_completing_with_a_claim_that_was_taken_over_writes_nothing(backend: Backend) -> None:
    repo = backend.repository
    stale = await repo.claim(
        ClaimTerms("key-1", "fp", owner="slow", now=1000.0, ttl_s=3600, in_progress_ttl_s=10)
    )
    assert stale.claim is not None
    fresh = await repo.claim(
        ClaimTerms("key-1", "fp", owner="fresh", now=1011.0, ttl_s=3600, in_progress_ttl_s=10)
    )
    assert fresh.claim is not None  # the slow holder's window had passed
    generation, _ = Generation.start("img_" + "e" * 32, req(n=1), now=1012.0).with_images(
        await FakeGenerator().generate(req(n=1))
    )

    with pytest.raises(Exception):  # noqa: B017, PT011 - each store has its own error; what matters is below
        await repo.complete(generation.complete(), stale.claim, now=1012.0)

    assert await repo.get(generation.id) is None
    assert await repo.held_keys() == ["key-1"]
    await repo.release(stale.claim)  # releasing what is no longer ours leaves the new holder alone
    assert await repo.held_keys() == ["key-1"]


async def test_a_completed_key_past_its_expiry_is_free_even_if_the_store_still_has_it(
    backend: Backend,
) -> None:
    world = World(backend)
    first = await world.service.generate(req(), idempotency_key="key-1")
    world.clock.now += world.service.policy.idempotency_ttl_s + 1

    again = await world.service.generate(req(), idempotency_key="key-1")

    assert not again.replayed
    assert again.generation.id != first.generation.id


async def test_a_claim_written_again_by_its_own_holder_is_still_its_claim(backend: Backend) -> None:
    repo = backend.repository
    reserved = "img_" + "f" * 32
    first = await repo.claim(
        ClaimTerms(
            "key-1", "fp", owner="me", now=1000.0, ttl_s=3600, in_progress_ttl_s=60, generation_id=reserved
        )
    )
    # The same write again, as botocore sends it when the first one's answer was lost.
    again = await repo.claim(
        ClaimTerms(
            "key-1", "fp", owner="me", now=1000.5, ttl_s=3600, in_progress_ttl_s=60, generation_id=reserved
        )
    )
    rival = await repo.claim(
        ClaimTerms("key-1", "fp", owner="you", now=1001.0, ttl_s=3600, in_progress_ttl_s=60)
    )

    assert first.claim is not None
    assert again.claim is not None
    assert again.claim.record.owner == "me"
    assert rival.claim is None
    assert rival.existing is not None
    assert (rival.existing.owner, rival.existing.generation_id) == ("me", reserved)
    await repo.release(again.claim)
    assert await repo.held_keys() == []
