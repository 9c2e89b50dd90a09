"""The route index by first path segment decides exactly as the linear first-match scan."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import parse_config
from proxy.routing import RequestFacts, compile_routes, decide

PREFIXES = ["/", "/a", "/a/b", "/b", "/ab", "/a/b/c", "/c"]
REGEXES = ["^/a", "^/b/", "^/$", "^/.*c$"]
PATHS = ["/", "/a", "/a/", "/a/b", "/a/bc", "/ab", "/ab/x", "/b", "/b/c", "/c", "/cc", "/d/c", "/a/b/c/d"]


def _route(index: int, match: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"r{index}", "match": match, "primary": "one"}


matches = st.one_of(
    st.sampled_from(PREFIXES).map(lambda p: {"path_prefix": p}),
    st.sampled_from(REGEXES).map(lambda r: {"path_regex": r}),
    st.sampled_from(PREFIXES).map(lambda p: {"path_prefix": p, "methods": ["POST"]}),
)


def _table(route_matches: list[dict[str, Any]]) -> Any:
    doc = {
        "version": 1,
        "upstreams": {"one": {"url": "http://127.0.0.1:9"}},
        "default_upstream": "one",
        "routes": [_route(i, m) for i, m in enumerate(route_matches)],
    }
    return compile_routes(parse_config(yaml.safe_dump(doc)))


def _facts(path: str, method: str) -> RequestFacts:
    return RequestFacts(method=method, path=path, headers={}, cookies={}, query={}, client_ip="127.0.0.1",
                        request_id="0" * 32)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(route_matches=st.lists(matches, max_size=8), path=st.sampled_from(PATHS),
       method=st.sampled_from(["GET", "POST"]))  # fmt: skip
def test_the_indexed_table_picks_the_same_route_as_scanning_every_route(
    route_matches: list[dict[str, Any]], path: str, method: str
) -> None:
    indexed = _table(route_matches)
    scanned = dataclasses.replace(indexed, by_segment={})
    assert decide(indexed, _facts(path, method)) == decide(scanned, _facts(path, method))


def test_a_path_under_a_segment_only_tries_that_segments_routes_and_the_catch_alls() -> None:
    table = _table([{"path_prefix": f"/svc{i}"} for i in range(50)] + [{"path_regex": "^/x"}])
    assert [route.name for route in table.by_segment["svc49"]] == ["r49", "r50"]
    assert [route.name for route in table.by_segment[""]] == ["r50"]
    assert decide(table, _facts("/svc49/items", "GET")).route == "r49"
    assert decide(table, _facts("/svc4", "GET")).route == "r4"
    assert decide(table, _facts("/svc499", "GET")).route == "default"
    assert decide(table, _facts("/x/1", "GET")).route == "r50"
