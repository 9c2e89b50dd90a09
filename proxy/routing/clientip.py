"""Who the client is: the peer address, or what trusted proxies say in X-Forwarded-For.

Owns: resolve_client_ip(). Pure: the caller passes the peer, the header values and the networks.

X-Forwarded-For is a list every proxy appends to, so only its right end can be believed: walk it
from the right while the hop is one of our trusted proxies; the first address that is not
trusted is the client. Anything left of it was written by the client and may be a lie.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["MAX_HOPS", "IPAddress", "IPNetwork", "is_trusted", "parse_ip", "resolve_client_ip"]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# A header longer than this has been tampered with; no real chain of proxies is this deep.
MAX_HOPS = 64


def parse_ip(text: str) -> IPAddress | None:
    """An address from an XFF entry or a peer: '1.2.3.4', '1.2.3.4:80', '[::1]:80', '::1'; else None."""
    text = text.strip().strip('"')
    candidates = [text]
    if text.startswith("[") and "]" in text:
        candidates = [text[1 : text.index("]")]]
    elif text.count(":") == 1:
        candidates.append(text.split(":", 1)[0])
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return address
    return None


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def resolve_client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address as text; "" when even the peer is unknown (e.g. a unix socket).

    `forwarded_for` holds every X-Forwarded-For header value as received (several headers are
    read as one comma-separated list). With no trusted proxies, or a peer that is not one,
    the header is ignored: anyone can send it. A malformed entry stops the walk; the hop to
    its right (a trusted proxy, which we do know) is then the best answer we have.
    """
    peer_address = parse_ip(peer) if peer else None
    if peer_address is None:
        return ""
    if not trusted or not is_trusted(peer_address, trusted):
        return str(peer_address)
    hops = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    current = peer_address
    for entry in reversed(hops[-MAX_HOPS:]):
        address = parse_ip(entry)
        if address is None:
            return str(current)
        current = address
        if not is_trusted(address, trusted):
            return str(address)
    return str(current)
