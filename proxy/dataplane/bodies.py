"""Request bodies held by the proxy: the process-wide memory budget, and request buffering.

Owns Buffers, the process's two Budgets: memory (every byte the proxy keeps for a request in memory —
buffered bodies, fallback replay copies, shadow copies — is taken from it first;
`limits.memory_budget_bytes`) and spool (bytes in temporary files; `limits.spool_budget_bytes`); Hold
(one request's share, given back when the request ends), BufferedBody and read_buffered(); and bounded(),
the one loop that holds a body read from the client to `limits.max_body_bytes`, whoever reads it.

Request buffering (nginx's `proxy_request_buffering on`, the default for every route): the whole body
is read before an upstream connection is taken, so a client that uploads slowly holds only its own
connection, never one of the upstream's. A body up to `limits.body_buffer_bytes` stays in memory when
the budget allows; a larger one (or one the memory budget cannot take) is spooled to an unlinked
temporary file; a body neither budget can take is refused with 503 `busy` (Retry-After), never
allocated beyond them. Everything is given back when the request ends (BufferedBody.close).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import IO

from proxy.config.resilience import Limits
from proxy.dataplane.errors import BodyTooLarge
from proxy.dataplane.http1 import BodyStream
from proxy.metrics import ProxyMetrics
from proxy.resilience.memory import Budget, Hold

__all__ = ["BudgetExhausted", "BufferedBody", "Buffers", "bounded", "read_buffered"]

_READ_CHUNK = 64 * 1024


async def bounded(content: BodyStream, limit: int | None, *, sent: int = 0) -> AsyncIterator[bytes]:
    """The client's body chunks as they arrive; BodyTooLarge as soon as they (with `sent`, the bytes of it
    already taken) pass `limit`. None: a declared length already checked, nothing to count."""
    total = sent
    async for chunk in content.iter_any():
        total += len(chunk)
        if limit is not None and total > limit:
            raise BodyTooLarge
        yield chunk


class BudgetExhausted(Exception):
    """Neither memory nor spool space is left for this body (503 busy)."""


class BufferedBody:
    """A whole request body: chunks in memory, or an unlinked temporary file. Re-readable (a fallback
    replay sends it again); close() gives back its memory or spool space and removes the file."""

    def __init__(self, memory: Hold, spool: Hold) -> None:
        self.size = 0
        self.memory_refused = False  # the memory budget could not take it: spooled instead (counted)
        self._chunks: list[bytes] = []
        self._file: IO[bytes] | None = None
        self._memory, self._spool = memory, spool

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def data(self) -> bytes | None:
        """The whole body when it is in memory (sent with one write), else None."""
        return None if self._file is not None else b"".join(self._chunks)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every byte again, from the start (memory or the spool file)."""
        if self._file is None:
            for chunk in self._chunks:
                yield chunk
            return
        self._file.seek(0)
        while chunk := self._file.read(_READ_CHUNK):  # page-cache reads: small and bounded
            yield chunk

    def _append(self, chunk: bytes) -> None:
        if self._file is None:
            if self._memory.grow(len(chunk)):
                self._chunks.append(chunk)
                self.size += len(chunk)
                return
            self.memory_refused = True
            self._to_file()
        if not self._spool.grow(len(chunk)):
            raise BudgetExhausted
        assert self._file is not None
        self._file.write(chunk)
        self.size += len(chunk)

    def _to_file(self) -> None:
        held = b"".join(self._chunks)
        if not self._spool.grow(len(held)):
            raise BudgetExhausted
        self._file = tempfile.TemporaryFile(prefix="strangler-body-")  # noqa: SIM115 - closed by close()
        self._file.write(held)
        self._chunks = []
        self._memory.close()

    def close(self) -> None:
        self._chunks = []
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory.close()
        self._spool.close()


async def read_buffered(
    content: BodyStream,
    *,
    declared: int | None,
    max_body_bytes: int,
    in_memory: int,
    memory: Budget,
    spool: Budget,
) -> BufferedBody:
    """Read the whole body before any upstream is contacted. Raises BodyTooLarge past max_body_bytes
    (a declared length is checked before a byte is read) and BudgetExhausted when neither budget can
    hold it; on any exception nothing stays reserved."""
    if declared is not None and declared > max_body_bytes:
        raise BodyTooLarge
    body = BufferedBody(Hold(memory), Hold(spool))
    try:
        if declared is not None and declared > in_memory:
            body._to_file()  # known to be large: straight to the spool, no memory held on the way
        async for chunk in bounded(content, max_body_bytes):
            if body._file is None and body.size + len(chunk) > in_memory:
                body._to_file()
            body._append(chunk)
    except BaseException:
        body.close()
        raise
    return body


class Buffers:
    """The process's two budgets, sized by the live `limits` block (they follow reloads), and their
    gauges. One per app: the handler, the fallback path and the shadow mirror all take from it."""

    def __init__(self, limits: Limits, *, metrics: ProxyMetrics) -> None:
        gauge = metrics.buffer_bytes
        self.memory = Budget(limits.memory_budget_bytes, on_change=gauge.labels("memory").set)
        self.spool = Budget(limits.spool_budget_bytes, on_change=gauge.labels("spool").set)

    def follow(self, limits: Limits) -> None:
        """A lower limit refuses new holds until enough is given back; nothing held is taken away."""
        self.memory.limit, self.spool.limit = limits.memory_budget_bytes, limits.spool_budget_bytes
