"""The hot path's shortcuts agree with the reference implementations they skip."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from proxy.config.paths import BadPath, normalize_path
from proxy.dataplane.handler import normalize, request_id_of

_ALPHABET = st.sampled_from([*list("/.%-_~!$&'()*+,;=:@aZ09?\\ é"), "%2f", "%2E", "%41", "%c3%a9", ".."])


@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_the_path_shortcut_gives_what_normalize_path_gives(raw: str) -> None:
    try:
        expected = normalize_path(raw)
    except BadPath:
        expected = None
    try:
        got = normalize(raw)
    except BadPath:
        got = None
    assert got == expected


@given(st.lists(st.sampled_from(["api", "images", "x.png", ".well-known", "..", ".", "", "a~b"]), max_size=6))
def test_the_path_shortcut_agrees_on_segment_shaped_paths(segments: list[str]) -> None:
    raw = "/" + "/".join(segments)
    assert normalize(raw) == normalize_path(raw)


def test_a_generated_request_id_has_the_shape_of_strangler_commons() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_of({}))
    assert request_id_of({"X-Request-ID": "kept-1"}) == "kept-1"
    assert request_id_of({"X-Request-ID": "bad id with spaces"}) != "bad id with spaces"
