from __future__ import annotations

from ipaddress import ip_network

import pytest

from proxy.routing.clientip import parse_ip, resolve_client_ip

LB = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert resolve_client_ip("203.0.113.7", ["1.2.3.4"], ()) == "203.0.113.7"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    assert resolve_client_ip("203.0.113.7", ["10.1.1.1, 1.2.3.4"], LB) == "203.0.113.7"


def test_behind_a_trusted_load_balancer_the_address_it_saw_is_the_client() -> None:
    assert resolve_client_ip("10.0.0.5", ["198.51.100.9"], LB) == "198.51.100.9"


def test_what_the_client_wrote_left_of_the_trusted_hops_is_not_believed() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; our LB appended the address it saw.
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1, 198.51.100.9"], LB) == "198.51.100.9"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1, 198.51.100.9, 10.2.2.2, 10.3.3.3"], LB) == "198.51.100.9"


def test_several_header_lines_are_read_as_one_list() -> None:
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1", "198.51.100.9, 10.2.2.2"], LB) == "198.51.100.9"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert resolve_client_ip("10.0.0.5", ["10.9.9.9, 10.2.2.2"], LB) == "10.9.9.9"


def test_a_trusted_peer_without_the_header_is_itself_the_client() -> None:
    assert resolve_client_ip("10.0.0.5", [], LB) == "10.0.0.5"
    assert resolve_client_ip("10.0.0.5", [" , "], LB) == "10.0.0.5"


def test_a_junk_entry_stops_the_walk_at_the_last_address_we_can_vouch_for() -> None:
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1, not-an-ip"], LB) == "10.0.0.5"
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1, unknown, 10.2.2.2"], LB) == "10.2.2.2"


def test_ports_brackets_and_ipv6_are_understood() -> None:
    assert resolve_client_ip("10.0.0.5", ["198.51.100.9:4711"], LB) == "198.51.100.9"
    assert resolve_client_ip("10.0.0.5", ["[2001:db8::1]:443"], LB) == "2001:db8::1"
    assert resolve_client_ip("fd00::1", ["2001:db8::1"], LB) == "2001:db8::1"


def test_an_ipv4_mapped_peer_is_treated_as_ipv4() -> None:
    assert resolve_client_ip("::ffff:10.0.0.5", ["198.51.100.9"], LB) == "198.51.100.9"
    assert resolve_client_ip("::ffff:203.0.113.7", [], ()) == "203.0.113.7"


def test_an_unknown_peer_gives_an_empty_client_ip() -> None:
    assert resolve_client_ip(None, ["1.2.3.4"], LB) == ""
    assert resolve_client_ip("garbage", ["1.2.3.4"], ()) == ""


def test_an_absurdly_long_header_is_bounded() -> None:
    header = ", ".join(["10.1.1.1"] * 10_000)
    assert resolve_client_ip("10.0.0.5", [header], LB) == "10.1.1.1"


@pytest.mark.parametrize(
    "text", ["", "x", "1.2.3", "1.2.3.4.5", "[::1", "::1]:80", "1.2.3.4:80:90", "_hidden"]
)
def test_junk_is_not_an_address(text: str) -> None:
    assert parse_ip(text) is None
