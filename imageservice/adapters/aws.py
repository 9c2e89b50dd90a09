"""The shared boto3 clients of the AWS backend, their thread pool, and `init-aws` (bucket + table).

boto3 clients are thread-safe once created, sessions are not: one session builds both clients once,
and every call runs on a sized pool so the event loop never blocks on HTTP.

Also owns telling a refusal of our credentials (AccessDenied) apart from every other store error:
`permission_checked` turns it into StoragePermissionDenied, logged once at ERROR with the operation
and the resource, so it is never mistaken for "not found" or for an outage.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from imageservice.domain.errors import StoragePermissionDenied

__all__ = [
    "NEWEST_INDEX",
    "AwsClients",
    "AwsSettings",
    "error_code",
    "init_aws",
    "is_access_denied",
    "permission_checked",
]

_T = TypeVar("_T")
NEWEST_INDEX = "newest"
_log = structlog.get_logger("imageservice.aws")
# S3 says AccessDenied (403), DynamoDB AccessDeniedException (400). A HEAD has no body, so botocore
# reports a bare "403"; moto's DynamoDB answers 403 too. Bad or expired credentials (InvalidAccessKeyId,
# SignatureDoesNotMatch, ExpiredToken...) are not listed: they stay storage_unavailable.
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled"})
_BARE_403_CODES = frozenset({"403", "Forbidden"})


@dataclass(frozen=True, slots=True)
class AwsSettings:
    bucket: str
    table: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    max_workers: int = 16
    # Timeouts are per attempt; botocore retries throttling, 5xx and connection errors until
    # `max_attempts` attempts in all (the first included). Short values make an outage fail fast (the
    # fault tests use 1-2 s and 2 attempts); what must not be lost, the saga retries itself.
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = 4


class AwsClients:
    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        config = Config(
            max_pool_connections=settings.max_workers,
            retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            # boto3 >= 1.36 sends CRC32 checksums by default; S3-compatible emulators may refuse them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"} if settings.endpoint_url else None,
        )
        session = boto3.session.Session(region_name=settings.region)
        self.s3: Any = session.client("s3", endpoint_url=settings.endpoint_url, config=config)
        self.dynamodb: Any = session.client("dynamodb", endpoint_url=settings.endpoint_url, config=config)
        self._executor = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="aws")

    async def call(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.s3.close()
        self.dynamodb.close()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_access_denied(exc: ClientError) -> bool:
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _DENIED_CODES or (status == 403 and code in _BARE_403_CODES)


@contextmanager
def permission_checked(service: str, resource: str) -> Iterator[None]:
    """Around calls to `service` (S3, DynamoDB) on `resource` (s3://bucket/key, dynamodb:table):
    AccessDenied becomes StoragePermissionDenied.

    Logged here, at ERROR, with what an operator needs to fix the policy: the operation (GetObject,
    TransactWriteItems...), the resource and AWS's request id. Never the credentials; AWS's own message
    names at most the principal's ARN.
    """
    try:
        yield
    except ClientError as exc:
        if not is_access_denied(exc):
            raise
        operation = f"{service} {exc.operation_name}"
        _log.error(
            "storage_permission_denied",
            operation=operation,
            resource=resource,
            aws_error=error_code(exc),
            aws_message=str(exc.response.get("Error", {}).get("Message", ""))[:300],
            aws_request_id=exc.response.get("ResponseMetadata", {}).get("RequestId"),
        )
        raise StoragePermissionDenied(operation) from exc


def init_aws(clients: AwsClients) -> list[str]:
    """Create the bucket and the table when missing; returns what was created. Safe to run twice."""
    created: list[str] = []
    settings = clients.settings
    try:
        clients.s3.head_bucket(Bucket=settings.bucket)
    except ClientError:
        kwargs: dict[str, Any] = {"Bucket": settings.bucket}
        if settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        clients.s3.create_bucket(**kwargs)
        created.append(f"s3://{settings.bucket}")
    try:
        clients.dynamodb.describe_table(TableName=settings.table)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        clients.dynamodb.create_table(
            TableName=settings.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "gsi_pk", "AttributeType": "S"},
                {"AttributeName": "gsi_sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": NEWEST_INDEX,
                    "KeySchema": [
                        {"AttributeName": "gsi_pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi_sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        clients.dynamodb.get_waiter("table_exists").wait(
            TableName=settings.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        # TTL only tidies up; expiry is decided in code because TTL deletion lags by up to 48 h.
        clients.dynamodb.update_time_to_live(
            TableName=settings.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        created.append(f"dynamodb:{settings.table}")
    _log.info("aws_initialised", created=created)
    return created
