"""What a request could not finish goes on in the background: key releases until they land, commits
whose outcome is unknown until they can be read. Bounded, counted, and given up loudly."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from imageservice.domain.errors import InProgress, StorageFailure, StorageOutcomeUnknown
from imageservice.domain.idempotency import ClaimResult, ClaimTerms
from imageservice.domain.model import Generation, GenerationRequest, Size
from imageservice.policy import Backoff
from imageservice.services import GenerationService
from tests.unit.imageservice.fakes import (
    FakeGenerator,
    Faults,
    FlakyBlobStore,
    FlakyRepository,
    InMemoryBlobStore,
    InMemoryRepository,
    make_service,
)

PATIENT = Backoff(attempts=100_000, first_s=0.001, max_s=0.001)  # keeps trying while the test looks


def req(n: int = 2) -> GenerationRequest:
    return GenerationRequest("a heron", n, Size(256, 256))


class World:
    def __init__(self, *, settle: Backoff | None = None, shutdown_settle_s: float = 5.0) -> None:
        self.faults = Faults()
        self.blobs = InMemoryBlobStore()
        self.repository = InMemoryRepository()
        self.registry = CollectorRegistry()
        self.service: GenerationService = make_service(
            generator=FakeGenerator(),
            blobs=FlakyBlobStore(self.blobs, self.faults),
            repository=FlakyRepository(self.repository, self.faults),
            registry=self.registry,
            **({"settle": settle} if settle else {}),  # type: ignore[arg-type]
            shutdown_settle_s=shutdown_settle_s,
        )

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def settled(self) -> None:
        await asyncio.wait_for(self.service.settler.drain(timeout_s=5), 10)
        assert self.service.settler.pending == 0


async def test_a_release_that_fails_inline_goes_on_in_the_background_until_it_lands() -> None:
    world = World()
    world.faults.fail("put")
    world.faults.fail("release", times=3 + 2)  # the request's 3 attempts, then 2 in the background

    with pytest.raises(StorageFailure):
        await world.service.generate(req(), idempotency_key="k1")
    await world.settled()

    assert await world.repository.held_keys() == []
    assert world.metric("imageservice_key_releases_total", result="deferred") == 1
    assert world.metric("imageservice_key_releases_total", result="retried") == 2
    assert world.metric("imageservice_key_releases_total", result="ok") == 1
    assert world.metric("imageservice_unsettled_keys") == 0
    world.faults.remaining.clear()
    assert not (await world.service.generate(req(), idempotency_key="k1")).replayed


async def test_a_release_that_never_lands_is_given_up_after_its_attempts_counted_and_logged() -> None:
    world = World(settle=Backoff(attempts=4, first_s=0.0, max_s=0.0))
    world.faults.fail("put")
    world.faults.fail("release")

    with capture_logs() as logs:
        with pytest.raises(StorageFailure):
            await world.service.generate(req(), idempotency_key="k1")
        await world.settled()

    assert await world.repository.held_keys() == ["k1"]  # for its in-progress expiry or reconcile
    assert world.metric("imageservice_key_releases_total", result="retried") == 4
    assert world.metric("imageservice_key_releases_total", result="gave_up") == 1
    assert world.metric("imageservice_abandoned_keys_total", reason="release_gave_up") == 1
    (gave_up,) = [line for line in logs if line["event"] == "key_release_gave_up"]
    assert gave_up["log_level"] == "error"
    assert "k1" not in repr(logs)  # the client's key is never logged, only its digest
    assert gave_up["key_sha256"]


async def test_a_claim_that_may_have_landed_unanswered_is_released_in_the_background() -> None:
    world = World()

    async def lands_then_fails(terms: ClaimTerms) -> ClaimResult:
        await InMemoryRepository.claim(world.repository, terms)
        raise StorageOutcomeUnknown("the answer was lost")

    world.repository.claim = lands_then_fails  # type: ignore[method-assign]
    with pytest.raises(StorageFailure):
        await world.service.generate(req(), idempotency_key="k1")
    await world.settled()

    assert await world.repository.held_keys() == []
    assert world.metric("imageservice_key_releases_total", result="ok") == 1


async def test_an_unknown_commit_keeps_its_blobs_and_key_and_is_replayed_once_it_reads_as_landed() -> None:
    world = World(settle=PATIENT)
    world.faults.fail("get")  # the store can be written, but no read answers for now

    async def lands_then_fails(generation: Generation, *args: object, **kwargs: object) -> None:
        await InMemoryRepository.complete(world.repository, generation, *args, **kwargs)  # type: ignore[arg-type]
        raise TimeoutError("the acknowledgement was lost")

    world.repository.complete = lands_then_fails  # type: ignore[method-assign]
    with pytest.raises(StorageFailure, match="not known yet"):
        await world.service.generate(req(), idempotency_key="k1")

    assert len(world.blobs.blobs) == 2  # kept: deleting them could break what landed
    assert world.metric("imageservice_uncertain_commits_total", resolution="unknown") == 1
    assert world.metric("imageservice_unsettled_keys") == 1
    world.faults.remaining.clear()
    await world.settled()

    assert world.metric("imageservice_uncertain_commits_total", resolution="landed") == 1
    replay = await world.service.generate(req(), idempotency_key="k1")
    assert replay.replayed
    assert sorted(world.blobs.blobs) == sorted(image.name for image in replay.generation.images)


async def test_an_unknown_commit_that_did_not_land_is_undone_once_it_can_be_read() -> None:
    world = World(settle=PATIENT)
    world.faults.fail("complete")
    world.faults.fail("get")

    with pytest.raises(StorageFailure):
        await world.service.generate(req(), idempotency_key="k1")
    with pytest.raises(InProgress):  # until it is settled, the key is still held
        await world.service.generate(req(), idempotency_key="k1")
    assert len(world.blobs.blobs) == 2
    world.faults.remaining.clear()
    await world.settled()

    assert world.metric("imageservice_uncertain_commits_total", resolution="not_landed") == 1
    assert world.blobs.blobs == {}
    assert await world.repository.held_keys() == []
    assert not (await world.service.generate(req(), idempotency_key="k1")).replayed


async def test_at_shutdown_settling_gets_its_grace_then_is_cancelled_and_counted() -> None:
    world = World(settle=PATIENT, shutdown_settle_s=0.01)
    world.faults.fail("put")
    world.faults.fail("release")
    with pytest.raises(StorageFailure):
        await world.service.generate(req(), idempotency_key="k1")

    with capture_logs() as logs:
        await asyncio.wait_for(world.service.drain(), 10)

    assert world.service.settler.pending == 0
    assert world.metric("imageservice_abandoned_keys_total", reason="shutdown") == 1
    assert world.metric("imageservice_unsettled_keys") == 0
    assert [line["event"] for line in logs if line["log_level"] == "error"] == ["key_release_abandoned"]


def test_a_backoff_doubles_up_to_its_cap_and_sums_to_its_budget() -> None:
    backoff = Backoff(attempts=6, first_s=0.5, max_s=4.0)
    assert list(backoff.delays()) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.budget_s == 15.5
    assert Backoff().budget_s == pytest.approx(120.5)  # the default: about two minutes
