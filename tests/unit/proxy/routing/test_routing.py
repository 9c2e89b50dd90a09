from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.config import parse_config
from proxy.routing import Decision, RequestFacts, RouteTable, compile_routes, decide
from proxy.routing.bucketing import bucket

UPSTREAMS = """
version: 1
upstreams:
  legacy: {url: "http://127.0.0.1:8081"}
  new: {url: "http://127.0.0.1:8082", connect_timeout_s: 1.5, timeout_s: 30}
  other: {url: "https://other.internal"}
default_upstream: legacy
trusted_proxies: ["10.0.0.0/8"]
"""


def table(routes: str) -> RouteTable:
    text = UPSTREAMS + "routes:\n" + textwrap.indent(textwrap.dedent(routes), "  ")
    return compile_routes(parse_config(text))


def facts(path: str = "/api/images", *, method: str = "GET", headers: Mapping[str, str] | None = None,
          cookies: Mapping[str, str] | None = None, query: Mapping[str, str] | None = None,
          client_ip: str = "198.51.100.1", request_id: str = "req-1") -> RequestFacts:
    return RequestFacts(method=method, path=path, headers=CIMultiDict(headers or {}), cookies=cookies or {},
                        query=query or {}, client_ip=client_ip, request_id=request_id)


IMAGES = """
- name: images
  match: {path_prefix: /api/images, methods: [GET, POST]}
  primary: legacy
  candidate: new
  rollout: {percent: 50, sticky_key: ["header:X-User-Id", "cookie:uid", "query:u", client_ip]}
  flags:
    - {header: X-Images-Backend, equals: new, use: candidate}
    - {cookie: images_backend, equals: old, use: primary}
    - {header: X-User-Id, in: [alice, bob], use: candidate}
    - {query: backend, equals: new, use: candidate}
"""


def test_the_table_carries_upstreams_trusted_networks_and_limits() -> None:
    compiled = table(IMAGES)
    assert compiled.upstreams["new"].url == "http://127.0.0.1:8082"
    assert compiled.upstreams["new"].connect_timeout_s == 1.5
    assert compiled.upstreams["new"].timeout_s == 30
    assert compiled.upstreams["legacy"].timeout_s == 60
    assert [str(net) for net in compiled.trusted_proxies] == ["10.0.0.0/8"]
    assert compiled.limits.max_body_bytes == 10 * 1024 * 1024
    images = compiled.route("images")
    assert images is not None
    assert images.percent == 50
    assert images.salt == "images"
    assert compiled.route("nope") is None


def test_unmatched_requests_go_to_the_default_upstream() -> None:
    assert decide(table(IMAGES), facts("/checkout")) == Decision("default", "legacy", "default", None)


@pytest.mark.parametrize(
    ("path", "matched"),
    [("/api/images", True), ("/api/images/", True), ("/api/images/42", True), ("/api/imagesx", False),
     ("/api/image", False), ("/API/images", False), ("/api", False), ("/", False)],
)
def test_a_prefix_matches_whole_segments_and_is_case_sensitive(path: str, matched: bool) -> None:
    decision = decide(table(IMAGES), facts(path, client_ip=""))
    assert (decision.route == "images") is matched


def test_a_root_prefix_matches_everything() -> None:
    compiled = table("- {name: all, match: {path_prefix: /}, primary: other}")
    assert decide(compiled, facts("/anything/at/all")).upstream == "other"


def test_methods_restrict_a_route_and_head_is_not_implied_by_get() -> None:
    compiled = table(IMAGES)
    assert decide(compiled, facts(method="POST")).route == "images"
    assert decide(compiled, facts(method="post")).route == "images"
    assert decide(compiled, facts(method="HEAD")).route == "default"
    assert decide(compiled, facts(method="DELETE")).route == "default"


def test_without_methods_every_method_matches() -> None:
    compiled = table("- {name: all, match: {path_prefix: /x}, primary: other}")
    assert {decide(compiled, facts("/x", method=m)).route for m in ("GET", "PURGE", "OPTIONS")} == {"all"}


def test_a_regex_is_searched_in_the_normalized_path() -> None:
    compiled = table(r'- {name: ids, match: {path_regex: "^/api/images/[0-9]+$"}, primary: other}')
    assert decide(compiled, facts("/api/images/42")).route == "ids"
    assert decide(compiled, facts("/api/images/42/x")).route == "default"
    assert decide(compiled, facts("/v2/api/images/42")).route == "default"


def test_the_first_matching_route_wins() -> None:
    compiled = table("""
    - {name: specific, match: {path_prefix: /api/images/special}, primary: other}
    - {name: general, match: {path_prefix: /api/images}, primary: new}
    - {name: shadowed, match: {path_prefix: /api/images/special}, primary: legacy}
    """)
    assert decide(compiled, facts("/api/images/special/1")) == Decision("specific", "other", "primary", None)
    assert decide(compiled, facts("/api/images/1")) == Decision("general", "new", "primary", None)


def test_a_route_without_rollout_sends_everything_to_its_primary() -> None:
    compiled = table("- {name: static, match: {path_prefix: /static}, primary: other}")
    for ip in ("1.1.1.1", "2.2.2.2", ""):
        decision = decide(compiled, facts("/static/a.css", client_ip=ip))
        assert decision == Decision("static", "other", "primary", None)


@pytest.mark.parametrize(
    ("request_kwargs", "expected_role"),
    [
        ({"headers": {"X-Images-Backend": "new"}}, "candidate"),
        ({"headers": {"x-images-backend": "new"}}, "candidate"),  # header names are case-insensitive
        ({"headers": {"X-Images-Backend": "NEW"}}, None),  # values are not
        ({"cookies": {"images_backend": "old"}}, "primary"),
        ({"headers": {"X-User-Id": "alice"}}, "candidate"),
        ({"headers": {"X-User-Id": "bob"}}, "candidate"),
        ({"query": {"backend": "new"}}, "candidate"),
        ({"query": {"backend": "old"}}, None),
    ],
)
def test_each_kind_of_flag_forces_its_side(
    request_kwargs: dict[str, dict[str, str]], expected_role: str | None
) -> None:
    compiled = table(IMAGES.replace("percent: 50", "percent: 0"))
    decision = decide(compiled, facts(**request_kwargs))  # type: ignore[arg-type]
    if expected_role is None:
        assert decision.reason != "flag"
    else:
        assert (decision.role, decision.reason) == (expected_role, "flag")


def test_flags_are_checked_in_order_and_the_first_match_wins() -> None:
    compiled = table(IMAGES.replace("percent: 50", "percent: 100"))
    # Flag 1 (candidate) comes before flag 2 (primary): candidate.
    both = facts(headers={"X-Images-Backend": "new"}, cookies={"images_backend": "old"})
    assert (decide(compiled, both).role, decide(compiled, both).reason) == ("candidate", "flag")
    # The opt-out cookie beats 100 %: flags come before the percentage.
    opted_out = facts(cookies={"images_backend": "old"}, headers={"X-User-Id": "alice"})
    assert decide(compiled, opted_out) == Decision("images", "legacy", "primary", "flag")


def test_flags_apply_on_a_route_without_rollout() -> None:
    compiled = table("""
    - name: pinned
      match: {path_prefix: /p}
      primary: legacy
      flags: [{header: X-Debug, equals: "1", use: primary}]
    """)
    decision = decide(compiled, facts("/p", headers={"X-Debug": "1"}))
    assert decision == Decision("pinned", "legacy", "primary", "flag")


def test_the_percentage_uses_the_first_sticky_source_present() -> None:
    compiled = table(IMAGES)
    salt = "images"
    for user in (f"user-{i}" for i in range(50)):
        expected = "candidate" if bucket(user, salt=salt) < 5000 else "primary"
        by_header = decide(compiled, facts(headers={"X-User-Id": user}, cookies={"uid": "zzz"}))
        by_cookie = decide(compiled, facts(cookies={"uid": user}, query={"u": "zzz"}))
        by_query = decide(compiled, facts(query={"u": user}))
        by_ip = decide(compiled, facts(client_ip=user))
        assert {by_header.role, by_cookie.role, by_query.role, by_ip.role} == {expected}
        assert by_header.reason == "percent"


def test_the_same_user_gets_the_same_side_in_every_request_and_replica() -> None:
    first, second = table(IMAGES), table(IMAGES)
    for user in (f"u{i}" for i in range(100)):
        request = facts(headers={"X-User-Id": user}, request_id=f"r-{user}")
        again = facts(headers={"X-User-Id": user}, request_id="another-request")
        assert decide(first, request) == decide(second, again)


def test_both_sides_receive_traffic_at_fifty_percent() -> None:
    compiled = table(IMAGES)
    roles = [decide(compiled, facts(headers={"X-User-Id": f"u{i}"})).role for i in range(400)]
    assert 100 < roles.count("candidate") < 300


def test_an_empty_key_counts_as_missing() -> None:
    compiled = table(IMAGES)
    decision = decide(compiled, facts(headers={"X-User-Id": ""}, client_ip=""))
    assert decision.reason == "missing_key"


def rollout_with(on_missing_key: str, percent: float = 50) -> RouteTable:
    return table(f"""
    - name: images
      match: {{path_prefix: /api/images}}
      primary: legacy
      candidate: new
      rollout: {{percent: {percent}, sticky_key: ["header:X-User-Id"], on_missing_key: {on_missing_key}}}
    """)


def test_a_request_without_any_key_follows_on_missing_key() -> None:
    assert decide(rollout_with("primary"), facts()) == Decision("images", "legacy", "primary", "missing_key")
    assert decide(rollout_with("candidate"), facts()) == Decision("images", "new", "candidate", "missing_key")


def test_random_on_missing_key_is_stable_per_request_and_follows_the_percentage() -> None:
    compiled = rollout_with("random")
    decisions = [decide(compiled, facts(request_id=f"req-{i}")) for i in range(400)]
    assert {d.reason for d in decisions} == {"missing_key"}
    assert 100 < sum(d.role == "candidate" for d in decisions) < 300
    assert all(decide(compiled, facts(request_id=f"req-{i}")) == d for i, d in enumerate(decisions))
    nobody = rollout_with("random", percent=0)
    assert {decide(nobody, facts(request_id=f"req-{i}")).role for i in range(100)} == {"primary"}


def test_sticky_key_defaults_to_the_client_ip_and_salt_to_the_route_name() -> None:
    compiled = table("""
    - {name: images, match: {path_prefix: /api/images}, primary: legacy, candidate: new,
       rollout: {percent: 30}}
    """)
    for i in range(100):
        ip = f"198.51.100.{i}"
        expected = "candidate" if bucket(ip, salt="images") < 3000 else "primary"
        assert decide(compiled, facts(client_ip=ip)).role == expected


def test_a_custom_salt_changes_who_is_in_the_rollout() -> None:
    plain = rollout_with("primary")
    salted = table(IMAGES.replace("percent: 50,", "percent: 50, salt: other-salt,"))
    users = [f"u{i}" for i in range(200)]
    sides = [decide(plain, facts(headers={"X-User-Id": u})).role for u in users]
    salted_sides = [decide(salted, facts(headers={"X-User-Id": u})).role for u in users]
    assert sides != salted_sides


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(["/", "/api/images", "/api/images/1", "/api/imagesx", "/other"]),
    method=st.sampled_from(["GET", "POST", "HEAD", "DELETE"]),
    headers=st.dictionaries(st.sampled_from(["X-User-Id", "X-Images-Backend"]), st.text(max_size=5),
                            max_size=2),
    cookies=st.dictionaries(st.sampled_from(["uid", "images_backend"]), st.text(max_size=5), max_size=2),
    query=st.dictionaries(st.sampled_from(["u", "backend"]), st.text(max_size=5), max_size=2),
    client_ip=st.sampled_from(["", "198.51.100.1", "2001:db8::1"]),
    request_id=st.text(max_size=8),
)
def test_every_request_gets_one_consistent_decision(
    path: str, method: str, headers: dict[str, str], cookies: dict[str, str], query: dict[str, str],
    client_ip: str, request_id: str,
) -> None:
    compiled = IMAGES_TABLE
    request = facts(path, method=method, headers=headers, cookies=cookies, query=query, client_ip=client_ip,
                    request_id=request_id)
    decision = decide(compiled, request)
    assert decision == decide(compiled, request)
    assert decision.upstream in compiled.upstreams
    if decision.route == "default":
        assert (decision.upstream, decision.role, decision.reason) == ("legacy", "default", None)
    else:
        expected = {"primary": "legacy", "candidate": "new"}[decision.role]
        assert decision.upstream == expected
        assert decision.reason in ("flag", "percent", "missing_key")


IMAGES_TABLE = table(IMAGES)
