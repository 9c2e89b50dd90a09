"""Hypothesis against the routing decision: every request gets a decision for a configured upstream, and
path tricks (dot segments, encoded dots and slashes, double slashes, case) neither reach a route the
normalized path does not match nor skip one it does."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.config import load_config
from proxy.config.paths import BadPath
from proxy.dataplane.handler import normalize
from proxy.routing import RequestFacts, compile_routes, decide
from tests.fuzz.conftest import FUZZ

REPO = Path(__file__).resolve().parents[2]
TABLE = compile_routes(load_config(REPO / "routes.yaml").config)
PREFIX = "/api/images"

segments = st.sampled_from([
    "api", "API", "Api", "images", "IMAGES", "imagesx", "..", ".", "", "%2e", "%2E%2e", ".%2e", "%2f",
    "%2F", "%5c", "%00", "%69mages", "leg_1", "img_2", "files", "x;y", "..;", "%", "%zz", "é", "a%20b",
])  # fmt: skip
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])


def facts(method: str, path: str, user: str | None) -> RequestFacts:
    headers = CIMultiDict({"X-User-Id": user} if user is not None else {})
    return RequestFacts(method=method, path=path, headers=headers, cookies={}, query={},
                        client_ip="203.0.113.9", request_id="r")  # fmt: skip


@FUZZ
@given(parts=st.lists(segments, max_size=8), trailing=st.booleans(), method=methods,
       user=st.none() | st.text(max_size=10))  # fmt: skip
def test_a_path_reaches_the_images_route_exactly_when_its_normalized_form_is_under_the_prefix(
    parts: list[str], trailing: bool, method: str, user: str | None
) -> None:
    raw = "/" + "/".join(parts) + ("/" if trailing else "")
    try:
        path = normalize(raw)
    except BadPath:
        return  # refused with 400: never routed at all
    assert normalize(path) == path  # the forwarded form is the matched form
    decision = decide(TABLE, facts(method, path, user))
    assert decision.upstream in TABLE.upstreams
    under = path == PREFIX or path.startswith(PREFIX + "/")
    assert (decision.route == "images") == (under and method in ("GET", "HEAD", "POST"))
    if decision.route == "images" and path.startswith(("/api/images/leg_", "/api/images/files/leg_")):
        assert decision.upstream == "legacy"  # data the monolith owns is read there, always


@FUZZ
@given(raw=st.text(max_size=40), method=st.text(min_size=1, max_size=8))
def test_no_path_or_method_makes_the_decision_fail(raw: str, method: str) -> None:
    try:
        path = normalize("/" + raw)
    except BadPath:
        return
    decision = decide(TABLE, facts(method, path, None))
    assert decision.upstream in TABLE.upstreams
