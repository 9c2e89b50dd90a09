"""How a failing store reaches the use cases' callers: as StorageFailure (503), never as a raw 500.

Owns that translation only. A refusal of our credentials arrives from the adapters already as
StoragePermissionDenied (a DomainError, logged there with the resource) and passes through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from imageservice.domain.errors import DomainError, StorageFailure

__all__ = ["as_storage_failure"]

_log = structlog.get_logger("imageservice.saga")


@asynccontextmanager
async def as_storage_failure(what: str) -> AsyncIterator[None]:
    """Around one store call: a store that fails (network, throttling, disk) raises StorageFailure."""
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        _log.warning("storage_failed", operation=what, error=type(exc).__name__)
        raise StorageFailure(f"storage is unavailable ({what})") from exc
