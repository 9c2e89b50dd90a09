"""In-memory fakes of the ports, and fault-injecting wrappers usable around real adapters too."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from imageservice.adapters.local_generator import paint
from imageservice.domain.idempotency import Claim, ClaimResult, ClaimTerms, IdempotencyRecord, KeyStatus
from imageservice.domain.model import GeneratedImage, Generation, GenerationRequest
from imageservice.domain.ports import BlobInfo, BlobStore, ImageGenerator, ImageRepository
from imageservice.limits import Limiter
from imageservice.metrics import ServiceMetrics
from imageservice.policy import Backoff, Policy
from imageservice.services import GenerationService


class InjectedFault(RuntimeError):
    """What a wrapped adapter raises when a test asks a step to fail."""


@dataclass
class Faults:
    """Steps to fail, each with how many more times it fails (a large number means always)."""

    remaining: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def fail(self, step: str, times: int = 1_000_000) -> None:
        self.remaining[step] = times

    def hit(self, step: str) -> None:
        self.calls[step] = self.calls.get(step, 0) + 1
        left = self.remaining.get(step, 0)
        if left > 0:
            self.remaining[step] = left - 1
            raise InjectedFault(f"injected failure at {step}")


class FakeGenerator:
    """Paints with the local painter; counts calls; can be held at a gate to create overlap."""

    def __init__(self, *, gate: asyncio.Event | None = None) -> None:
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.gate = gate
        self.started = asyncio.Event()

    @property
    def name(self) -> str:
        return "fake"

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            return [
                GeneratedImage(
                    paint(request.prompt, i, request.size), request.size.width, request.size.height
                )
                for i in range(request.n)
            ]
        finally:
            self.running -= 1


class InMemoryBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.modified: dict[str, float] = {}

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        self.blobs[name] = data
        self.modified[name] = 0.0

    async def get(self, name: str) -> bytes | None:
        return self.blobs.get(name)

    async def delete(self, name: str) -> None:
        self.blobs.pop(name, None)

    async def list_blobs(self) -> list[BlobInfo]:
        return [BlobInfo(name, self.modified[name]) for name in sorted(self.blobs)]


class InMemoryRepository:
    def __init__(self) -> None:
        self.generations: dict[str, Generation] = {}
        self.keys: dict[str, IdempotencyRecord] = {}

    async def claim(self, terms: ClaimTerms) -> ClaimResult:
        existing = self.keys.get(terms.key)
        if existing is not None and existing.held_by(terms.owner):
            return ClaimResult(claim=Claim(existing))
        if existing is not None and existing.is_live(terms.now):
            return ClaimResult(existing=existing)
        record = IdempotencyRecord.claimed(terms)
        self.keys[terms.key] = record
        return ClaimResult(claim=Claim(record))

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        if claim is not None:
            current = self.keys.get(claim.record.key)
            if current is None or current.owner != claim.record.owner:
                raise LookupError("not our key")
            self.keys[claim.record.key] = IdempotencyRecord(
                current.key,
                current.fingerprint,
                KeyStatus.COMPLETED,
                current.owner,
                current.expires_at,
                current.in_progress_expires_at,
                generation.id,
            )
        self.generations[generation.id] = generation

    async def release(self, claim: Claim) -> None:
        current = self.keys.get(claim.record.key)
        if current and current.owner == claim.record.owner and current.status is KeyStatus.IN_PROGRESS:
            del self.keys[claim.record.key]

    async def get(self, generation_id: str) -> Generation | None:
        return self.generations.get(generation_id)

    async def list_recent(self, limit: int) -> list[Generation]:
        return list(reversed(self.generations.values()))[:limit]

    async def held_keys(self) -> list[str]:
        return [k for k, r in self.keys.items() if r.status is KeyStatus.IN_PROGRESS]

    async def all_generations(self) -> list[Generation]:
        return list(self.generations.values())

    async def delete_generation(self, generation_id: str) -> None:
        self.generations.pop(generation_id, None)

    async def all_keys(self) -> list[IdempotencyRecord]:
        return list(self.keys.values())

    async def drop_key(self, record: IdempotencyRecord) -> bool:
        if self.keys.get(record.key) != record:
            return False
        del self.keys[record.key]
        return True


class FlakyGenerator:
    def __init__(self, inner: ImageGenerator, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    @property
    def name(self) -> str:
        return self.inner.name

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.faults.hit("generate")
        return await self.inner.generate(request)


class FlakyBlobStore:
    def __init__(self, inner: BlobStore, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        await self.inner.put(name, data, content_type)  # the write lands, then the call "fails"
        self.faults.hit("put")

    async def get(self, name: str) -> bytes | None:
        return await self.inner.get(name)

    async def delete(self, name: str) -> None:
        self.faults.hit("delete")
        await self.inner.delete(name)

    async def list_blobs(self) -> list[BlobInfo]:
        return await self.inner.list_blobs()


class FlakyRepository:
    def __init__(self, inner: ImageRepository, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    async def claim(self, terms: ClaimTerms) -> ClaimResult:
        self.faults.hit("claim")
        return await self.inner.claim(terms)

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        self.faults.hit("complete")
        await self.inner.complete(generation, claim, now=now)

    async def release(self, claim: Claim) -> None:
        self.faults.hit("release")
        await self.inner.release(claim)

    async def get(self, generation_id: str) -> Generation | None:
        self.faults.hit("get")
        return await self.inner.get(generation_id)

    async def list_recent(self, limit: int) -> list[Generation]:
        return await self.inner.list_recent(limit)

    async def all_generations(self) -> list[Generation]:
        return await self.inner.all_generations()

    async def delete_generation(self, generation_id: str) -> None:
        await self.inner.delete_generation(generation_id)

    async def all_keys(self) -> list[IdempotencyRecord]:
        return await self.inner.all_keys()

    async def drop_key(self, record: IdempotencyRecord) -> bool:
        return await self.inner.drop_key(record)


INSTANT = Backoff(attempts=5, first_s=0.0, max_s=0.0)  # background settling without waiting


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(
    *,
    generator: ImageGenerator | None = None,
    blobs: BlobStore | None = None,
    repository: ImageRepository | None = None,
    max_concurrency: int = 4,
    max_queue: int = 8,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    settle: Backoff = INSTANT,
    shutdown_settle_s: float = 5.0,
) -> GenerationService:
    metrics = ServiceMetrics(registry or CollectorRegistry())
    return GenerationService(
        generator=generator or FakeGenerator(),
        blobs=blobs or InMemoryBlobStore(),
        repository=repository or InMemoryRepository(),
        limiter=Limiter(
            max_concurrency=max_concurrency, max_queue=max_queue, retry_after_s=2, metrics=metrics
        ),
        metrics=metrics,
        policy=Policy(compensation_backoff_s=0.0, settle=settle, shutdown_settle_s=shutdown_settle_s),
        clock=clock or Clock(),
    )
