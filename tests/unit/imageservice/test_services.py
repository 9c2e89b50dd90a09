from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from imageservice.domain.errors import (
    GeneratorFailure,
    InProgress,
    KeyReused,
    NotFound,
    Overloaded,
    StorageFailure,
)
from imageservice.domain.idempotency import ClaimTerms
from imageservice.domain.model import GenerationRequest, Size
from tests.unit.imageservice.fakes import (
    Clock,
    FakeGenerator,
    Faults,
    FlakyBlobStore,
    FlakyGenerator,
    FlakyRepository,
    InMemoryBlobStore,
    InMemoryRepository,
    make_service,
)


def req(prompt: str = "a fox", n: int = 2) -> GenerationRequest:
    return GenerationRequest(prompt, n, Size(256, 256))


class World:
    def __init__(self, **kwargs: object) -> None:
        self.faults = Faults()
        self.generator = FakeGenerator(gate=kwargs.pop("gate", None))  # type: ignore[arg-type]
        self.blobs = InMemoryBlobStore()
        self.repository = InMemoryRepository()
        self.registry = CollectorRegistry()
        self.clock = Clock()
        self.service = make_service(
            generator=FlakyGenerator(self.generator, self.faults),
            blobs=FlakyBlobStore(self.blobs, self.faults),
            repository=FlakyRepository(self.repository, self.faults),
            registry=self.registry,
            clock=self.clock,
            **kwargs,  # type: ignore[arg-type]
        )

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def test_a_generation_stores_every_image_and_its_metadata() -> None:
    world = World()
    outcome = await world.service.generate(req(n=3))

    generation = outcome.generation
    assert generation.id.startswith("img_")
    assert sorted(world.blobs.blobs) == sorted(image.name for image in generation.images)
    assert await world.service.get(generation.id) == generation
    assert await world.service.file(generation.images[0].name) == world.blobs.blobs[generation.images[0].name]
    assert world.metric("imageservice_images_total") == 3
    assert world.metric("imageservice_generations_total", generator="fake", outcome="ok") == 1


async def test_the_same_key_and_body_replays_the_stored_generation_without_generating() -> None:
    world = World()
    first = await world.service.generate(req(), idempotency_key="k1")
    again = await world.service.generate(req(), idempotency_key="k1")

    assert again.replayed
    assert again.generation == first.generation
    assert world.generator.calls == 1
    assert world.metric("imageservice_idempotent_replays_total") == 1


async def test_the_same_key_with_another_body_is_refused() -> None:
    world = World()
    await world.service.generate(req(), idempotency_key="k1")
    with pytest.raises(KeyReused):
        await world.service.generate(req(prompt="a wolf"), idempotency_key="k1")
    assert world.metric("imageservice_rejected_total", reason="idempotency_key_reused") == 1


async def test_concurrent_requests_with_one_key_generate_once() -> None:
    gate = asyncio.Event()
    world = World(gate=gate)
    first = asyncio.create_task(world.service.generate(req(), idempotency_key="k1"))
    await asyncio.wait_for(world.generator.started.wait(), 5)
    for _ in range(3):
        with pytest.raises(InProgress):
            await world.service.generate(req(), idempotency_key="k1")
    gate.set()
    done = await asyncio.wait_for(first, 5)
    replay = await world.service.generate(req(), idempotency_key="k1")

    assert replay.generation == done.generation
    assert world.generator.calls == 1


@pytest.mark.parametrize(
    ("step", "error"),
    [("generate", GeneratorFailure), ("put", StorageFailure), ("complete", StorageFailure)],
)
async def test_a_failure_at_any_step_leaves_no_blob_and_no_held_key(
    step: str, error: type[Exception]
) -> None:
    world = World()
    world.faults.fail(step)

    with pytest.raises(error):
        await world.service.generate(req(n=3), idempotency_key="k1")

    assert world.blobs.blobs == {}
    assert await world.repository.held_keys() == []
    assert world.repository.generations == {}
    world.faults.remaining.clear()
    retried = await world.service.generate(req(n=3), idempotency_key="k1")  # the key is free again
    assert not retried.replayed


async def test_compensation_is_retried_until_it_succeeds() -> None:
    world = World()
    world.faults.fail("complete")
    world.faults.fail("delete", times=2)  # each blob's first deletes fail, the third attempt of one works

    with pytest.raises(StorageFailure):
        await world.service.generate(req(n=1), idempotency_key="k1")

    assert world.blobs.blobs == {}
    assert world.metric("imageservice_compensations_total", step="delete_blob", result="ok") == 1
    assert world.metric("imageservice_compensations_total", step="release_key", result="ok") == 1


async def test_a_compensation_that_keeps_failing_is_counted_and_left_for_reconcile() -> None:
    world = World()
    world.faults.fail("complete")
    world.faults.fail("delete")

    with pytest.raises(StorageFailure):
        await world.service.generate(req(n=2))

    assert len(world.blobs.blobs) == 2
    assert world.metric("imageservice_compensations_total", step="delete_blob", result="failed") == 2
    world.faults.remaining.clear()
    report = await world.service.reconcile(dry_run=False, min_age_s=0)
    assert sorted(report.removed) == sorted(report.orphans)
    assert len(report.removed) == 2
    assert world.blobs.blobs == {}


async def test_a_metadata_write_that_landed_despite_an_error_is_kept() -> None:
    world = World()

    async def complete_then_fail(*args: object, **kwargs: object) -> None:
        await InMemoryRepository.complete(world.repository, *args, **kwargs)  # type: ignore[arg-type]
        raise TimeoutError("the answer was lost")

    world.repository.complete = complete_then_fail  # type: ignore[method-assign]
    outcome = await world.service.generate(req(n=1))

    assert await world.service.get(outcome.generation.id) is not None
    assert len(world.blobs.blobs) == 1


async def test_a_cancelled_generation_undoes_its_claim() -> None:
    world = World(gate=asyncio.Event())
    task = asyncio.create_task(world.service.generate(req(), idempotency_key="k1"))
    await asyncio.wait_for(world.generator.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await world.repository.held_keys() == []


async def test_a_shadow_request_generates_but_stores_nothing_and_claims_nothing() -> None:
    world = World()
    outcome = await world.service.generate(req(), idempotency_key="k1", shadow=True)

    assert not outcome.stored
    assert len(outcome.generation.images) == 2
    assert world.blobs.blobs == {}
    assert world.repository.keys == {}
    assert world.repository.generations == {}
    assert world.faults.calls.get("claim") is None


async def test_generations_beyond_concurrency_and_queue_are_refused_at_once() -> None:
    gate = asyncio.Event()
    world = World(gate=gate, max_concurrency=2, max_queue=1)
    tasks = [asyncio.create_task(world.service.generate(req(n=1))) for _ in range(3)]
    for _ in range(50):  # bounded: let the three reach the limiter
        await asyncio.sleep(0)
    with pytest.raises(Overloaded) as refused:
        await world.service.generate(req(n=1))
    assert refused.value.retry_after_s == 2
    assert world.generator.running == 2  # the third waits in the queue
    assert world.metric("imageservice_in_flight") == 2
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert world.generator.max_running == 2
    assert world.metric("imageservice_rejected_total", reason="overloaded") == 1
    assert world.metric("imageservice_in_flight") == 0


async def test_a_replay_does_not_wait_for_a_generation_slot() -> None:
    gate = asyncio.Event()
    world = World(gate=gate, max_concurrency=1, max_queue=2)
    gate.set()
    await world.service.generate(req(), idempotency_key="k1")
    gate.clear()
    busy = asyncio.create_task(world.service.generate(req(prompt="slow")))
    await asyncio.wait_for(world.generator.started.wait(), 5)

    replay = await asyncio.wait_for(world.service.generate(req(), idempotency_key="k1"), 5)

    assert replay.replayed
    gate.set()
    await busy


async def test_an_expired_in_progress_claim_can_be_taken_over() -> None:
    world = World()
    await world.repository.claim(
        ClaimTerms(
            "k1", req().fingerprint(), owner="crashed", now=world.clock.now, ttl_s=3600, in_progress_ttl_s=300
        )
    )
    with pytest.raises(InProgress):
        await world.service.generate(req(), idempotency_key="k1")
    world.clock.now += 301
    outcome = await world.service.generate(req(), idempotency_key="k1")
    assert not outcome.replayed


async def test_unknown_ids_and_names_are_not_found() -> None:
    world = World()
    with pytest.raises(NotFound):
        await world.service.get("img_missing")
    with pytest.raises(NotFound):
        await world.service.get("other")
    with pytest.raises(NotFound):
        await world.service.file("../../etc/passwd")


async def test_reconcile_dry_run_reports_orphans_but_keeps_them() -> None:
    world = World()
    kept = await world.service.generate(req(n=1))
    await world.blobs.put("img_" + "a" * 32 + "_0.png", b"orphan", "image/png")

    report = await world.service.reconcile(dry_run=True, min_age_s=0)

    assert report.orphans == ["img_" + "a" * 32 + "_0.png"]
    assert report.removed == []
    assert len(world.blobs.blobs) == 2
    assert kept.generation.images[0].name in world.blobs.blobs


async def test_reconcile_leaves_young_blobs_alone() -> None:
    world = World()
    await world.blobs.put("img_" + "a" * 32 + "_0.png", b"orphan", "image/png")
    world.blobs.modified["img_" + "a" * 32 + "_0.png"] = world.clock.now - 10

    report = await world.service.reconcile(dry_run=False, min_age_s=60)

    assert report.orphans == []
    assert len(world.blobs.blobs) == 1


async def test_a_failing_store_is_a_storage_failure_not_a_crash() -> None:
    world = World()
    world.faults.fail("claim")
    with pytest.raises(StorageFailure):
        await world.service.generate(req(), idempotency_key="k1")
    assert world.generator.calls == 0


class GatedBlobStore(InMemoryBlobStore):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().put(name, data, content_type)


async def test_a_caller_leaving_while_images_are_stored_does_not_abandon_the_saga() -> None:
    blobs = GatedBlobStore()
    repository = InMemoryRepository()
    service = make_service(blobs=blobs, repository=repository)
    task = asyncio.create_task(service.generate(req(n=2), idempotency_key="k1"))
    await asyncio.wait_for(blobs.entered.wait(), 5)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    blobs.gate.set()
    await asyncio.wait_for(service.drain(), 5)

    assert len(repository.generations) == 1
    assert len(blobs.blobs) == 2
    replay = await service.generate(req(n=2), idempotency_key="k1")  # the client's retry gets the result
    assert replay.replayed
