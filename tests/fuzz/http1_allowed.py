"""Where the new public listener (proxy.dataplane.http1: strict llhttp through httptools) and today's
(aiohttp's server as FrontDoorRunner runs it, its C parser being llhttp too) may disagree on accepting a
request, each entry with its reason. Used by test_http1_differential.py, which also checks that every
entry still shows its difference (a stale entry fails) and, where an entry names a `reduce`, that the
two servers agree once the part it blames is removed (so the entry cannot hide another difference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

__all__ = ["ALLOWED", "Allowed", "Answer", "first_message", "matching"]


@dataclass(frozen=True)
class Answer:
    status: int  # the final status, 0 when the server closed without answering

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Allowed:
    name: str
    reason: str
    example: bytes  # a request that shows the difference
    applies: Callable[[bytes, Answer, Answer], bool]  # (request, new, old)
    reduce: Callable[[bytes], bytes | None] | None = None  # the request without the blamed part


class _Ends:
    def __init__(self) -> None:
        self.done = False

    def on_message_complete(self) -> None:
        self.done = True


def first_message(data: bytes) -> bytes | None:
    """The bytes of the first complete request in `data` (as llhttp frames it) when more bytes follow it;
    None when there is no complete first request, or nothing after it."""
    ends = _Ends()
    parser = HttpRequestParser(ends)
    for end in range(1, len(data) + 1):
        try:
            parser.feed_data(data[end - 1 : end])
        except (HttpParserError, HttpParserUpgrade):
            return None
        if ends.done:
            return data[:end] if end < len(data) else None
    return None


def _target(data: bytes) -> bytes:
    return data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""


ALLOWED: list[Allowed] = [
    Allowed(
        name="bytes after a complete request",
        reason=(
            "A request followed by bytes that are not a request (in the same packet, or after a request "
            "that closes the connection): the new server answers the complete request first, in order "
            "(RFC 9112 §9.3.2), then refuses or drops what follows, while aiohttp refuses the whole read "
            "with a single 400 before answering the request (its parser fails on the trailing bytes in "
            "the same feed). Once the trailing bytes are removed both must agree."
        ),
        example=b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nzz",
        applies=lambda data, new, old: new.accepted and not old.accepted and first_message(data) is not None,
        reduce=first_message,
    ),
    Allowed(
        name="absolute-form target",
        reason=(
            "`GET http://host/path`: RFC 9112 §3.2.2 lets a server accept the absolute form, and aiohttp "
            "passes it to the handler (so the trivial one answers 200); the proxy routes by path only, "
            "and today's handler refuses such a target with 400 invalid_path (normalize: the path must "
            "start with '/'). The new server refuses it itself with the same 400 invalid_path, before "
            "any handler: clients see no change."
        ),
        example=b"GET http://169.254.169.254/latest HTTP/1.1\r\nHost: a\r\n\r\n",
        applies=lambda data, new, old: (
            not new.accepted and old.accepted and not _target(data).startswith(b"/")
        ),
    ),
]


def matching(data: bytes, new: Answer, old: Answer) -> Allowed | None:
    for allowed in ALLOWED:
        if allowed.applies(data, new, old):
            return allowed
    return None
