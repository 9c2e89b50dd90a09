"""What the routing decision needs to know about one request, gathered cheaply: its id, its normalized
path, and RequestFacts with cookies and query parsed only when a rule of the table reads them (no lazy
objects or closures per request) and the client address parsed once per peer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from urllib.parse import parse_qsl

from proxy.config.paths import normalize_path
from proxy.dataplane.http1 import Request
from proxy.routing import RequestFacts, RouteTable
from proxy.routing.clientip import resolve_client_ip
from strangler_common.web import REQUEST_ID_HEADER, accept_request_id

__all__ = ["normalize", "request_facts", "request_id_of"]


# Paths with nothing to normalize: literal pchars only, no escape, no empty or dot-led segment.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")


def normalize(raw_path: str) -> str:
    """paths.normalize_path, with a shortcut for the common path that is already in canonical form."""
    plain = raw_path[:1] == "/" and "/." not in raw_path and "//" not in raw_path
    if plain and _PLAIN_PATH.fullmatch(raw_path):
        return raw_path
    return normalize_path(raw_path)


def request_id_of(headers: Mapping[str, str]) -> str:
    sent = headers.get(REQUEST_ID_HEADER)
    # Same token as strangler_common's new_request_id (32 hex digits), without building a UUID object.
    return accept_request_id(sent) if sent is not None else os.urandom(16).hex()


@lru_cache(maxsize=4096)
def _peer_ip(peer: str | None) -> str:
    """With no trusted proxies the client is the peer; parse each peer address once, not per request."""
    return resolve_client_ip(peer, (), ())


def request_facts(request: Request, path: str, request_id: str, table: RouteTable) -> RequestFacts:
    """Cookies and the query are parsed only when a rule of the table reads them (table.reads)."""
    headers, trusted, reads = request.headers, table.trusted_proxies, table.reads
    return RequestFacts(
        method=request.method,
        path=path,
        headers=headers,
        cookies=_cookies(headers.getall("Cookie", [])) if "cookie" in reads else _NOTHING,
        query=_query(request.query) if "query" in reads and request.query else _NOTHING,
        client_ip=(
            resolve_client_ip(request.peer, headers.getall("X-Forwarded-For", []), trusted)
            if trusted
            else _peer_ip(request.peer)
        ),
        request_id=request_id,
    )


_NOTHING: Mapping[str, str] = MappingProxyType({})


def _cookies(lines: list[str]) -> Mapping[str, str]:
    """`Cookie: a=1; b=2` (every such line); the first value of a name wins, as a browser sends the most
    specific first. A malformed pair is skipped, never the rest of the line."""
    found: dict[str, str] = {}
    for line in lines:
        for pair in line.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep and name and name not in found:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found[name] = value
    return found


def _query(raw: str) -> Mapping[str, str]:
    """The query's parameters, percent- and `+`-decoded; the first value of a name wins."""
    found: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        found.setdefault(name, value)
    return found
