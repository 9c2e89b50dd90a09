"""Who a kept mismatch was for: the route's sticky key read from the copy, hashed with a key."""

from __future__ import annotations

import ipaddress
import re

from multidict import CIMultiDict

from proxy.routing.rules import KeySource
from proxy.shadow.userkey import user_key

KEY = b"k" * 32
SOURCES = (KeySource.parse("header:X-User-Id"), KeySource.parse("cookie:uid"), KeySource.parse("query:u"),
           KeySource.parse("client_ip"))  # fmt: skip


def test_the_first_source_present_is_named_and_hashed_never_shown() -> None:
    headers = CIMultiDict({"Cookie": "a=1; uid=alice", "X-Forwarded-For": "10.0.0.9"})
    found = user_key(SOURCES, headers, "", key=KEY)
    assert found is not None
    assert re.fullmatch(r"cookie:uid [0-9a-f]{12}", found)
    assert "alice" not in found
    by_header = user_key(SOURCES, CIMultiDict({"x-user-id": "alice"}), "", key=KEY)
    assert by_header is not None
    assert by_header.startswith("header:X-User-Id ")
    assert str(user_key(SOURCES, CIMultiDict(), "u=alice", key=KEY)).startswith("query:u ")


def test_the_same_user_hashes_alike_with_one_key_and_differently_with_another() -> None:
    headers = CIMultiDict({"X-User-Id": "alice"})
    assert user_key(SOURCES, headers, "", key=KEY) == user_key(SOURCES, headers, "", key=KEY)
    assert user_key(SOURCES, headers, "", key=KEY) != user_key(SOURCES, headers, "", key=b"j" * 32)
    assert user_key(SOURCES, CIMultiDict({"X-User-Id": "bob"}), "", key=KEY) != \
        user_key(SOURCES, headers, "", key=KEY)  # fmt: skip


def test_the_client_address_is_the_one_routing_believes() -> None:
    only_ip = (KeySource.parse("client_ip"),)
    spoofed = CIMultiDict({"X-Forwarded-For": "1.2.3.4, 10.0.0.9"})  # the client said 1.2.3.4; we saw .9
    untrusted = user_key(only_ip, spoofed, "", key=KEY)
    assert untrusted == user_key(only_ip, CIMultiDict({"X-Forwarded-For": "10.0.0.9"}), "", key=KEY)
    trusted = user_key(only_ip, spoofed, "", key=KEY, trusted=[ipaddress.ip_network("10.0.0.0/8")])
    assert trusted == user_key(only_ip, CIMultiDict({"X-Forwarded-For": "1.2.3.4"}), "", key=KEY)
    assert user_key(only_ip, CIMultiDict(), "", key=KEY) is None
