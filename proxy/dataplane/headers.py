"""Header hygiene for one hop: what the proxy drops (hop-by-hop, those named in Connection, the internal
headers only the proxy may send), what it sets (X-Forwarded-*, X-Request-ID), and the upstream URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from proxy.dataplane.http1 import Request
from strangler_common.shadowmark import INTERNAL_HEADERS

__all__ = [
    "HOP_BY_HOP", "Networks", "request_headers", "response_headers", "upstream_url",
]  # fmt: skip

HOP_BY_HOP = (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
    "TE", "Trailer", "Transfer-Encoding", "Upgrade",
)  # fmt: skip
# Request-only: the client library sets Host from the upstream URL; the proxy has already answered a
# `100-continue` itself; the forwarding headers are rebuilt below; a client never speaks for the proxy
# (INTERNAL_HEADERS: every header the proxy uses to talk to its upstreams, in any case, every copy).
_REQUEST_DROP = (
    *HOP_BY_HOP, "Host", "Expect", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
    *INTERNAL_HEADERS,
)  # fmt: skip
_REQUEST_DROP_LOWER = frozenset(name.lower() for name in _REQUEST_DROP)
Networks = Sequence[IPv4Network | IPv6Network]




def upstream_url(base: str, path: str, query: str) -> URL:
    """Base URL + normalized path + the query exactly as received: nothing is decoded or re-encoded."""
    target = base.rstrip("/") + path
    if query:
        target += "?" + query
    return URL(target, encoded=True)


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> list[str]:
    return [t.strip() for v in headers.getall("Connection", ()) for t in v.split(",") if t.strip()]


def _trusted(peer: str | None, trusted: Networks) -> bool:
    if not trusted or peer is None:
        return False
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def request_headers(request: Request, request_id: str, trusted: Networks) -> CIMultiDict[str]:
    """The headers that go upstream, in the client's order: one pass drops what _REQUEST_DROP and the
    client's Connection header name, then the forwarding headers and X-Request-ID are set."""
    incoming = request.headers
    drop = _REQUEST_DROP_LOWER
    if "Connection" in incoming:
        drop = drop | {token.lower() for token in _connection_tokens(incoming)}
    out = CIMultiDict([(name, value) for name, value in incoming.items() if name.lower() not in drop])
    peer = request.peer
    prior = incoming.getall("X-Forwarded-For", ())
    chain = [*prior, peer] if peer else list(prior)
    if chain:
        out["X-Forwarded-For"] = ", ".join(chain)
    believed = ("X-Forwarded-Proto" in incoming or "X-Forwarded-Host" in incoming) and _trusted(peer, trusted)
    proto = incoming.get("X-Forwarded-Proto") if believed else None
    host = incoming.get("X-Forwarded-Host") if believed else None
    out["X-Forwarded-Proto"] = proto or "http"  # the public listener speaks plain HTTP (TLS ends before it)
    out["X-Forwarded-Host"] = host or incoming.get("Host") or ""
    out["X-Request-ID"] = request_id
    return out


_HOP_BY_HOP_LOWER = frozenset(name.lower() for name in HOP_BY_HOP)


def response_headers(upstream: list[tuple[str, str]], request_id: str) -> list[tuple[str, str]]:
    """The upstream's header lines as the client gets them, in their order: hop-by-hop headers and those
    its Connection header names dropped, X-Request-ID added unless the upstream set one."""
    drop = _HOP_BY_HOP_LOWER
    tokens = [value for name, value in upstream if name.lower() == "connection"]
    if tokens:
        drop = drop | {t.strip().lower() for value in tokens for t in value.split(",") if t.strip()}
    out = [(name, value) for name, value in upstream if name.lower() not in drop]
    if not any(name.lower() == "x-request-id" for name, _ in out):
        out.append(("X-Request-ID", request_id))
    return out
