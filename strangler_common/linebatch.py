"""Lines written to a stream in batches, as Envoy and nginx write their access logs.

Owns LineBatch: a batch is written once `flush_s` has passed since its first line (a timer on the
running event loop), once it holds `buffer_bytes`, and on flush(); `flush_s=0`, or no running loop,
writes each line at once. Every write carries whole lines and at most PIPE_BUF bytes (a longer line goes
alone), then the stream is flushed: a write that size to a pipe is atomic, so processes sharing one
stderr pipe (`serve --workers N`) never cut into each other's lines. A line is written once: a batch
leaves the buffer before it is written. An exit hook writes what is still buffered (the last resort:
the owner flushes when it stops). Owns no rendering: the lines come whole and ASCII (strangler_common.logs).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import select
import weakref
from typing import Final, TextIO

__all__ = ["DEFAULT_BUFFER_BYTES", "PIPE_BUF", "LineBatch"]

# 4096 on Linux; 512 is POSIX's minimum.
PIPE_BUF: Final[int] = getattr(select, "PIPE_BUF", 512)
DEFAULT_BUFFER_BYTES: Final = 64 * 1024  # a batch this large is written at once, however young

_buffered: weakref.WeakSet[LineBatch] = weakref.WeakSet()  # what the exit hook writes
_exit_hook = False


def _flush_at_exit() -> None:
    for batch in list(_buffered):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: nothing more to do
            batch.flush()


class LineBatch:
    """Lines (each ending in a newline, ASCII: a character is a byte) on their way to `stream`."""

    __slots__ = ("__weakref__", "_buffer_bytes", "_flush_s", "_pending", "_size", "_stream", "_timer")

    def __init__(self, stream: TextIO, *, flush_s: float, buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        global _exit_hook
        if not flush_s >= 0:  # also refuses nan
            raise ValueError(f"the flush interval must be 0 or more seconds, not {flush_s!r}")
        self._stream = stream
        self._flush_s = flush_s
        self._buffer_bytes = buffer_bytes
        self._pending: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        if flush_s > 0:
            _buffered.add(self)
            if not _exit_hook:
                atexit.register(_flush_at_exit)
                _exit_hook = True

    def add(self, line: str) -> None:
        if not self._flush_s:
            self._stream.write(line)
            self._stream.flush()
            return
        pending = self._pending
        pending.append(line)
        self._size += len(line)
        if self._size >= self._buffer_bytes:
            self.flush()
        elif len(pending) == 1:  # the first line of a batch starts its clock
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to flush later (a script, a test): written at once
                self.flush()
            else:
                self._timer = loop.call_later(self._flush_s, self._flush_on_time)

    def flush(self) -> None:
        """Write every buffered line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        lines, self._pending, self._size = self._pending, [], 0  # out before written: never written twice
        stream = self._stream
        chunk: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) > PIPE_BUF and chunk:
                stream.write("".join(chunk))
                stream.flush()
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        stream.write("".join(chunk))
        stream.flush()

    def _flush_on_time(self) -> None:
        self._timer = None
        self.flush()
