"""A store refusing our credentials is told apart from a store failing and from a missing item."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from imageservice.adapters.aws import is_access_denied
from imageservice.domain.errors import StorageFailure, StoragePermissionDenied
from imageservice.domain.idempotency import Claim
from imageservice.domain.model import Generation, GenerationRequest, Size
from imageservice.entrypoints.api import from_domain
from tests.unit.imageservice.fakes import InMemoryBlobStore, InMemoryRepository, make_service


def client_error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "..."},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status", "denied"),
    [
        ("AccessDenied", 403, True),  # S3
        ("AccessDeniedException", 400, True),  # DynamoDB
        ("403", 403, True),  # a HEAD: no body, botocore reports the status
        ("Forbidden", 403, True),
        ("NoSuchKey", 404, False),
        ("404", 404, False),
        ("SignatureDoesNotMatch", 403, False),  # bad credentials, not a missing permission
        ("ProvisionedThroughputExceededException", 400, False),
        ("SlowDown", 503, False),
    ],
)
def test_only_a_refused_permission_counts_as_access_denied(code: str, status: int, denied: bool) -> None:
    assert is_access_denied(client_error(code, status)) is denied


def test_a_permission_refusal_is_a_500_that_says_so_and_an_outage_stays_a_503() -> None:
    denied = from_domain(StoragePermissionDenied("S3 GetObject"))
    outage = from_domain(StorageFailure("storage is unavailable (reading the image)"))

    assert (denied.status, denied.code) == (500, "storage_permission_denied")
    assert "lack permission for S3 GetObject" in denied.message
    assert "not found" not in denied.message.lower()
    assert (outage.status, outage.code) == (503, "storage_unavailable")


class RefusingBlobStore(InMemoryBlobStore):
    """Refuses reads and the second put; the first put fails like an outage."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        self.puts += 1
        if self.puts == 1:
            raise ConnectionError("reset")
        raise StoragePermissionDenied("S3 PutObject")

    async def get(self, name: str) -> bytes | None:
        raise StoragePermissionDenied("S3 GetObject")


class RefusingRepository(InMemoryRepository):
    def __init__(self) -> None:
        super().__init__()
        self.reads_after_refusal = 0

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        raise StoragePermissionDenied("DynamoDB TransactWriteItems")

    async def get(self, generation_id: str) -> Generation | None:
        self.reads_after_refusal += 1
        return await super().get(generation_id)


def req() -> GenerationRequest:
    return GenerationRequest("a locked door", 2, Size(256, 256))


async def test_a_refused_image_read_is_the_permission_error_not_not_found() -> None:
    service = make_service(blobs=RefusingBlobStore())

    with pytest.raises(StoragePermissionDenied):
        await service.file("img_0123456789abcdef0123456789abcdef_0.png")


async def test_a_refused_put_wins_over_an_outage_and_the_saga_still_undoes_everything() -> None:
    blobs, repository = RefusingBlobStore(), InMemoryRepository()
    service = make_service(blobs=blobs, repository=repository)

    with pytest.raises(StoragePermissionDenied, match="S3 PutObject"):
        await service.generate(req(), idempotency_key="k1")

    assert blobs.blobs == {}
    assert await repository.held_keys() == []


async def test_a_refused_metadata_write_passes_through_without_asking_whether_it_landed() -> None:
    repository = RefusingRepository()
    service = make_service(repository=repository)

    with pytest.raises(StoragePermissionDenied, match="DynamoDB TransactWriteItems"):
        await service.generate(req(), idempotency_key="k1")

    assert repository.reads_after_refusal == 0
    assert await repository.held_keys() == []
