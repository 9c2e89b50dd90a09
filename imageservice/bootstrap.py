"""Settings → concrete adapters → the service. The only place that picks a generator or a store.

`build()` is an async context manager: it opens what needs opening (SQLite, boto3 clients, the
OpenAI client) and closes it on exit. Tests may pass their own adapters to replace any of the three.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry

from imageservice.adapters.aws import AwsClients, AwsSettings
from imageservice.adapters.fs_blobs import FsBlobStore
from imageservice.adapters.local_generator import LocalGenerator
from imageservice.adapters.sqlite_repo import SqliteRepository
from imageservice.domain.ports import BlobStore, ImageGenerator, ImageRepository
from imageservice.limits import Limiter
from imageservice.metrics import ServiceMetrics
from imageservice.policy import Backoff, Policy
from imageservice.services import GenerationService
from imageservice.settings import Settings, SettingsError
from strangler_common.shadowmark import ShadowGate

__all__ = ["Container", "Overrides", "aws_settings", "build"]

_log = structlog.get_logger("imageservice.bootstrap")


@dataclass(frozen=True, slots=True)
class Overrides:
    generator: ImageGenerator | None = None
    blobs: BlobStore | None = None
    repository: ImageRepository | None = None


@dataclass(frozen=True, slots=True)
class Container:
    service: GenerationService
    shadow: ShadowGate  # which requests are the proxy's shadow copies (signed marker)


def aws_settings(settings: Settings) -> AwsSettings:
    return AwsSettings(
        bucket=settings.s3_bucket,
        table=settings.dynamodb_table,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        max_workers=settings.aws_max_workers,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=settings.aws_read_timeout_s,
        max_attempts=settings.aws_max_attempts,
    )


def policy(settings: Settings) -> Policy:
    return Policy(
        idempotency_ttl_s=settings.idempotency_ttl_s,
        in_progress_ttl_s=settings.in_progress_ttl_s,
        settle=Backoff(
            attempts=settings.settle_attempts,
            first_s=settings.settle_backoff_s,
            max_s=settings.settle_max_backoff_s,
        ),
        shutdown_settle_s=settings.shutdown_settle_s,
    )


async def _generator(settings: Settings, stack: AsyncExitStack) -> ImageGenerator:
    if settings.generator == "local":
        return LocalGenerator(delay_s=settings.local_delay_s)
    import openai  # only the openai generator pays for importing the SDK

    from imageservice.adapters.openai_generator import OpenAIGenerator, OpenAISettings

    if settings.openai_api_key is None:
        raise SettingsError("the openai generator needs OPENAI_API_KEY or OPENAI_API_KEY_FILE")
    client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key.reveal(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_s,
        max_retries=0,  # OpenAIGenerator retries itself (see its docstring)
    )
    stack.push_async_callback(client.close)
    return OpenAIGenerator(
        client,
        OpenAISettings(
            model=settings.openai_model,
            timeout_s=settings.openai_timeout_s,
            max_retries=settings.openai_max_retries,
            max_retry_wait_s=settings.openai_max_retry_wait_s,
        ),
    )


async def _stores(settings: Settings, stack: AsyncExitStack) -> tuple[BlobStore, ImageRepository]:
    if settings.storage == "local":
        blobs = FsBlobStore(settings.data_dir / "images")
        blobs.ensure()
        repository = SqliteRepository(settings.data_dir / "imageservice.sqlite3")
        await repository.open()
        stack.push_async_callback(repository.close)
        return blobs, repository
    from imageservice.adapters.dynamodb_repo import DynamoDbRepository
    from imageservice.adapters.s3_blobs import S3BlobStore

    clients = AwsClients(aws_settings(settings))
    stack.callback(clients.close)
    return S3BlobStore(clients), DynamoDbRepository(clients)


@asynccontextmanager
async def build(
    settings: Settings, *, registry: CollectorRegistry | None = None, overrides: Overrides | None = None
) -> AsyncIterator[Container]:
    overrides = overrides or Overrides()
    metrics = ServiceMetrics(registry if registry is not None else CollectorRegistry())
    async with AsyncExitStack() as stack:
        generator = overrides.generator or await _generator(settings, stack)
        if overrides.blobs is not None and overrides.repository is not None:
            blobs, repository = overrides.blobs, overrides.repository
        else:
            blobs, repository = await _stores(settings, stack)
            blobs = overrides.blobs or blobs
            repository = overrides.repository or repository
        service = GenerationService(
            generator=generator,
            blobs=blobs,
            repository=repository,
            limiter=Limiter(
                max_concurrency=settings.max_concurrency,
                max_queue=settings.max_queue,
                retry_after_s=settings.retry_after_s,
                metrics=metrics,
            ),
            metrics=metrics,
            policy=policy(settings),
        )
        try:
            if settings.shadow_key is None:
                _log.info("shadow_marker_ignored", detail="no STRANGLER_SHADOW_KEY: X-Strangler-Shadow is "
                          "ignored and every request is stored like any other")  # fmt: skip
            gate = ShadowGate(
                settings.shadow_key, report=lambda verdict: metrics.shadow_markers.labels(verdict).inc()
            )
            yield Container(service=service, shadow=gate)
        finally:
            await service.drain()
