"""What the routing decision needs to know about one request, gathered cheaply: its id, its normalized
path, and RequestFacts with cookies and query parsed only if a rule asks for them and the client address
parsed once per peer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache

from aiohttp import web

from proxy.config.paths import normalize_path
from proxy.dataplane.headers import Networks
from proxy.routing import RequestFacts
from proxy.routing.clientip import resolve_client_ip
from strangler_common.web import REQUEST_ID_HEADER, accept_request_id

__all__ = ["normalize", "request_facts", "request_id_of"]


class _Lazy(Mapping[str, str]):
    """A mapping computed on first use: most routes never look at cookies or the query."""

    __slots__ = ("_data", "_load")

    def __init__(self, load: Callable[[], Mapping[str, str]]) -> None:
        self._load = load
        self._data: Mapping[str, str] | None = None

    def _get(self) -> Mapping[str, str]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


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


def request_facts(request: web.Request, path: str, request_id: str, trusted: Networks) -> RequestFacts:
    headers = request.headers
    return RequestFacts(
        method=request.method,
        path=path,
        headers=headers,
        cookies=_Lazy(lambda: request.cookies),
        query=_Lazy(lambda: request.query),
        client_ip=(
            resolve_client_ip(request.remote, headers.getall("X-Forwarded-For", ()), trusted)
            if trusted
            else _peer_ip(request.remote)
        ),
        request_id=request_id,
    )
