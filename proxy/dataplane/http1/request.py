"""One parsed request as the handler sees it: built once when its head is complete, never changed after.

Owns Request. The target is kept exactly as received (llhttp admits only visible ASCII in it); path and
query are its two halves around the first "?", still undecoded. Headers are decoded as latin-1 (every
byte kept, re-encoded the same way on the next hop). Owns nothing of the body but the stream it is read
from (body.py).
"""

from __future__ import annotations

from multidict import CIMultiDict

from proxy.dataplane.http1.body import BodyStream

__all__ = ["Request"]


class Request:
    """A request head and its body stream. `keep_alive` is what the client asked for (its version and
    Connection header); whether the connection is kept is the server's decision."""

    __slots__ = (
        "body_exists", "chunked", "content", "content_length", "expect_continue", "headers", "keep_alive",
        "method", "path", "peer", "peer_port", "query", "raw_headers", "target", "upgrade", "version",
    )  # fmt: skip

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        raw_headers: list[tuple[bytes, bytes]],
        peer: tuple[str | None, int | None],
        *,
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        upgrade: bool,
        expect_continue: bool,
        content: BodyStream,
    ) -> None:
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.version = version
        self.raw_headers = raw_headers
        self.headers: CIMultiDict[str] = CIMultiDict(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers]
        )
        self.peer, self.peer_port = peer
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.body_exists = chunked or bool(content_length)
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.content = content

    def __repr__(self) -> str:  # never the headers: they may carry credentials
        return f"<Request {self.method} {self.path!r} HTTP/{self.version}>"
