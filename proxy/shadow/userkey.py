"""Who a kept mismatch was for, never shown in clear: the route's sticky key, read from the shadow copy and
hashed with a key.

Owns user_key(): the first of the route's `rollout.sticky_key` sources that has a value in the copy (the
client's headers, cookies and query as the proxy forwarded them; client_ip resolved from the
X-Forwarded-For the proxy appended, as routing resolves it), as `<source> <12 hex digits>` of a keyed
BLAKE2b. The key is the shadow-signing key when there is one (the same user hashes alike in every worker
and replica), else a per-process random one: without the key, a hash cannot be reversed by trying every
user id or address. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network
from urllib.parse import parse_qsl

from proxy.routing.clientip import resolve_client_ip
from proxy.routing.rules import KeySource

__all__ = ["user_key"]

_PERSON = b"strangler-user"  # BLAKE2b personalisation: these hashes are never signatures


def user_key(
    sources: Sequence[KeySource], headers: Mapping[str, str], query: str, *, key: bytes,
    trusted: Sequence[IPv4Network | IPv6Network] = (),
) -> str | None:  # fmt: skip
    """`cookie:uid 3f9a1c2b7d0e`, or None when the copy carries none of the sources."""
    for source in sources:
        value = _read(source, headers, query, trusted)
        if value:
            digest = hashlib.blake2b(value.encode(), key=key[:64], digest_size=6, person=_PERSON)
            label = source.kind if source.kind == "client_ip" else f"{source.kind}:{source.name}"
            return f"{label} {digest.hexdigest()}"
    return None


def _read(
    source: KeySource, headers: Mapping[str, str], query: str, trusted: Sequence[IPv4Network | IPv6Network]
) -> str | None:
    if source.kind == "header":
        return headers.get(source.name)
    if source.kind == "cookie":
        return _cookies(headers.get("Cookie", "")).get(source.name)
    if source.kind == "query":
        return next((v for k, v in parse_qsl(query, keep_blank_values=False) if k == source.name), None)
    hops = [hop.strip() for hop in headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    if not hops:
        return None
    return resolve_client_ip(hops[-1], [", ".join(hops[:-1])], trusted) or None  # the last hop: our peer


def _cookies(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip().strip('"')
    return found
