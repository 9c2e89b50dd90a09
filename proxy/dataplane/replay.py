"""Request bodies the fallback path can send twice: a body already buffered whole (request_body:
buffer), or, on a streaming route, a copy kept up to the fallback's max_body_bytes and what the memory
budget allows; beyond either, a stream that still sends every byte but cannot be replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from proxy.dataplane.bodies import BufferedBody, bounded
from proxy.dataplane.errors import BodyTooLarge
from proxy.dataplane.http1 import BodyStream
from proxy.resilience.memory import Hold

__all__ = ["Body", "read_body", "sendable"]


@dataclass(slots=True)
class Body:
    """A request body: whole (`data` or an already `buffered` body: replayable) or a stream that could
    not be kept (`stream`)."""

    data: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    buffered: BufferedBody | None = None
    budget_refused: bool = False  # not kept because the memory budget was spent (counted)
    over_keep: bool = False  # a buffered body larger than fallback.max_body_bytes: never replayed

    @property
    def replayable(self) -> bool:
        return self.stream is None and not self.over_keep

    def payload(self) -> bytes | AsyncIterator[bytes]:
        """What to send, from the first byte (a second call sends it all again, unless streamed)."""
        if self.buffered is not None:
            return sendable(self.buffered)
        return self.stream if self.stream is not None else (self.data or b"")



def sendable(body: BufferedBody) -> bytes | AsyncIterator[bytes]:
    data = body.data()
    return data if data is not None else body.chunks()


async def _chained(prefix: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in prefix:
        yield chunk
    async for chunk in rest:
        yield chunk


async def read_body(
    content: BodyStream, *, keep: int, limit: int, declared: int | None, hold: Hold
) -> Body:
    """Read up to `keep` bytes so the body can be sent twice; beyond that, stream the rest.

    `limit` (limits.max_body_bytes) still refuses anything larger with BodyTooLarge. A declared
    Content-Length above `keep` is not buffered at all: it streams as it would without fallback. Every
    kept byte is taken from the memory budget through `hold` first (a declared length all at once);
    when the budget says no, the body streams (not replayable) instead of growing memory.
    """
    if declared is not None and declared > limit:
        raise BodyTooLarge
    incoming = bounded(content, limit)
    if declared is not None and declared > keep:
        return Body(stream=incoming)
    if declared is not None and not hold.grow(declared):
        return Body(stream=incoming, budget_refused=True)
    chunks: list[bytes] = []
    total = 0
    async for chunk in incoming:
        chunks.append(chunk)
        total += len(chunk)
        if total > keep:
            return Body(stream=_chained(chunks, incoming))
        if declared is None and not hold.grow(len(chunk)):
            return Body(stream=_chained(chunks, incoming), budget_refused=True)
    return Body(data=b"".join(chunks))
