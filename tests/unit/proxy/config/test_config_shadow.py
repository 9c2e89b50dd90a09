"""The `shadow` block of routes.yaml: defaults, every rule, and errors at file:line: path."""

from __future__ import annotations

import textwrap

import pytest
from multidict import CIMultiDict

from proxy.config import ConfigError, parse_config
from proxy.routing import RequestFacts, compile_routes
from proxy.shadow.policy import compile_shadow

HEAD = """\
version: 1
upstreams:
  legacy: {url: "http://127.0.0.1:8081"}
  imageservice: {url: "http://127.0.0.1:8082"}
default_upstream: legacy
routes:
  - name: images
    match: {path_prefix: /api/images, methods: [GET, HEAD, POST]}
    primary: legacy
    candidate: imageservice
    rollout: {percent: 10}
"""


def with_shadow(block: str) -> str:
    """The shadow block (written at column 0) lands on the images route; its first line is line 12."""
    return HEAD + textwrap.indent(textwrap.dedent(block), "    ")


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.errors


def test_a_shadow_block_with_only_a_percentage_gets_the_documented_defaults() -> None:
    config = parse_config(with_shadow("shadow: {percent: 100}\n"))

    shadow = config.routes[0].shadow
    assert shadow is not None
    assert shadow.methods == ["GET", "HEAD"]
    assert (shadow.max_in_flight, shadow.max_body_bytes, shadow.timeout_s) == (32, 1048576, 30.0)
    assert shadow.compare.status is True
    assert shadow.compare.headers == []
    assert shadow.compare.images == "dimensions"
    assert shadow.noise_baseline.percent == 0
    assert shadow.noise_baseline.methods == ["GET", "HEAD"]
    assert shadow.keep_mismatches == 100


def test_the_issue_example_is_valid_and_compiles_into_a_policy() -> None:
    text = with_shadow("""\
        shadow:
          percent: 100
          methods: [get, POST]
          max_per_minute: 30
          max_in_flight: 4
          max_body_bytes: 2048
          timeout_s: 1.5
          compare:
            status: true
            headers: [Content-Type]
            ignore: [id, created, "images[*].url", "images[*].name", "images[*].sha256", "images[*].bytes"]
            images: bytes
          noise_baseline:
            percent: 5
            methods: [GET]
        """)
    table = compile_routes(parse_config(text))

    route = table.routes[0]
    policy = compile_shadow(route.shadow, salt=route.salt)
    assert policy is not None
    assert table.shadowed["images"] is table.routes[0]
    assert policy.methods == frozenset({"GET", "POST"})
    assert policy.compare.headers == ("content-type",)
    assert len(policy.compare.ignore) == 6
    assert policy.compare.images == "bytes"
    assert (policy.max_in_flight, policy.max_body_bytes, policy.timeout_s) == (4, 2048, 1.5)
    assert policy.max_per_minute == 30
    assert (policy.noise_percent, policy.noise_methods) == (5, frozenset({"GET"}))
    assert policy.salt == "images"


def test_a_route_without_shadow_or_at_zero_percent_costs_nothing_per_request() -> None:
    assert compile_routes(parse_config(HEAD)).shadowed == {}
    table = compile_routes(parse_config(with_shadow("shadow: {percent: 0}\n")))
    assert table.shadowed == {}
    assert table.routes[0].shadow is None


def test_the_percentage_is_required_because_proxies_disagree_on_the_default() -> None:
    assert errors_of(with_shadow("shadow: {methods: [GET]}\n")) == [
        "routes.yaml:12: routes[0].shadow.percent: required field is missing",
    ]


def test_every_bad_shadow_field_is_reported_at_its_line() -> None:
    text = with_shadow("""\
        shadow:
          percent: 99.999
          methods: []
          max_in_flight: 0
          max_body_bytes: 0
          timeout_s: -1
          keep_mismatches: 0
          sample_by: user
          compare:
            status: yes
            headers: ["bad header"]
            ignore: ["images[*]..url", "", "a[x]"]
            images: pixels
            colour: true
          noise_baseline: {percent: 101, methods: ["NOT A METHOD"]}
        """)
    assert errors_of(text) == [
        "routes.yaml:13: routes[0].shadow.percent: must have at most two decimals",
        "routes.yaml:14: routes[0].shadow.methods: must not be empty (set percent: 0 to turn it off)",
        "routes.yaml:15: routes[0].shadow.max_in_flight: must be between 1 and 10000",
        "routes.yaml:16: routes[0].shadow.max_body_bytes: "
        "must be between 1 and 67108864 (64 MiB): both bodies are held in memory",
        "routes.yaml:17: routes[0].shadow.timeout_s: must be a number of seconds greater than 0",
        "routes.yaml:18: routes[0].shadow.keep_mismatches: must be between 1 and 10000",
        "routes.yaml:19: routes[0].shadow.sample_by: must be 'request_id' or 'sticky_key' (got 'user')",
        "routes.yaml:21: routes[0].shadow.compare.status: must be true or false (got 'yes')",
        "routes.yaml:22: routes[0].shadow.compare.headers[0]: 'bad header' is not a header name",
        "routes.yaml:23: routes[0].shadow.compare.ignore[0]: 'images[*]..url' is not a field path like 'id' "
        "or 'images[*].url': expected a field name at position 10 of 'images[*]..url'",
        "routes.yaml:23: routes[0].shadow.compare.ignore[1]: '' is not a field path like 'id' "
        "or 'images[*].url': must not be empty",
        "routes.yaml:23: routes[0].shadow.compare.ignore[2]: 'a[x]' is not a field path like 'id' "
        "or 'images[*].url': expected '.', '[N]' or '[*]' at position 1 of 'a[x]'",
        "routes.yaml:24: routes[0].shadow.compare.images: "
        "must be 'dimensions', 'bytes' or 'off' (got 'pixels')",
        "routes.yaml:25: routes[0].shadow.compare.colour: unknown field",
        "routes.yaml:26: routes[0].shadow.noise_baseline.methods[0]: 'NOT A METHOD' is not an HTTP method",
        "routes.yaml:26: routes[0].shadow.noise_baseline.percent: must be between 0 and 100",
    ]


def test_shadowing_needs_a_candidate_to_mirror_to() -> None:
    text = """\
version: 1
upstreams:
  legacy: {url: "http://127.0.0.1:8081"}
default_upstream: legacy
routes:
  - name: shop
    match: {path_prefix: /shop}
    primary: legacy
    shadow: {percent: 5}
"""
    assert errors_of(text) == [
        "routes.yaml:9: routes[0].shadow: needs a candidate upstream on the route: "
        "the shadow copy goes to the candidate",
    ]


def test_mirroring_a_method_the_route_never_matches_is_refused() -> None:
    text = HEAD.replace("methods: [GET, HEAD, POST]", "methods: [POST]") + "    shadow: {percent: 5}\n"
    assert errors_of(text) == [
        "routes.yaml:12: routes[0].shadow: mirrors GET and HEAD by default, but match.methods has neither: "
        "list methods",
    ]
    listed = with_shadow("shadow: {percent: 5, methods: [POST, DELETE], max_per_minute: 10}\n")
    assert errors_of(listed) == [
        "routes.yaml:12: routes[0].shadow.methods[1]: DELETE is not in match.methods, "
        "so it is never mirrored",
    ]


def test_yaml_1_1_booleans_stay_text_in_the_compare_block() -> None:
    assert errors_of(with_shadow("shadow: {percent: 5, compare: {status: on}}\n")) == [
        "routes.yaml:12: routes[0].shadow.compare.status: must be true or false (got 'on')",
    ]


def test_sampling_by_sticky_key_hashes_the_routes_sticky_key_and_falls_back_to_the_request_id() -> None:
    text = HEAD.replace("rollout: {percent: 10}", "rollout: {percent: 10, sticky_key: [header:X-User-Id]}")
    route = compile_routes(parse_config(text + "    shadow: {percent: 5, sample_by: sticky_key}\n")).routes[0]
    by_id = compile_routes(parse_config(text + "    shadow: {percent: 5}\n")).routes[0]

    assert route.shadow_key(facts({"X-User-Id": "u1"})) == "u1"
    assert route.shadow_key(facts({})) == "rid-1"
    assert by_id.shadow_key(facts({"X-User-Id": "u1"})) == "rid-1"


def facts(headers: dict[str, str]) -> RequestFacts:
    return RequestFacts(method="GET", path="/api/images", headers=CIMultiDict(headers), cookies={}, query={},
                        client_ip="10.0.0.1", request_id="rid-1")  # fmt: skip


def test_mirroring_an_unsafe_method_requires_a_cost_budget() -> None:
    assert errors_of(with_shadow("shadow: {percent: 5, methods: [GET, POST]}\n")) == [
        "routes.yaml:12: routes[0].shadow: mirrors POST, so max_per_minute is required: every copy of an "
        "unsafe method makes the candidate do real work (a paid image API charges for each one); set the "
        "most copies a minute you accept paying for",
    ]
    assert errors_of(with_shadow("shadow: {percent: 5, methods: [POST], max_per_minute: null}\n"))
    assert errors_of(with_shadow("shadow: {percent: 5, methods: [POST], max_per_minute: 0}\n")) == [
        "routes.yaml:12: routes[0].shadow.max_per_minute: must be between 1 and 1000000",
    ]
    budgeted = parse_config(with_shadow("shadow: {percent: 5, methods: [POST], max_per_minute: 20}\n"))
    route = compile_routes(budgeted).routes[0]
    assert compile_shadow(route.shadow, salt=route.salt).max_per_minute == 20  # type: ignore[union-attr]


def test_safe_methods_need_no_budget_and_default_to_unlimited() -> None:
    config = parse_config(with_shadow("shadow: {percent: 5, methods: [GET, HEAD]}\n"))
    route = compile_routes(config).routes[0]
    policy = compile_shadow(route.shadow, salt=route.salt)
    assert policy is not None
    assert policy.max_per_minute is None
