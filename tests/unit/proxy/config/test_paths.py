from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.paths import BadPath, normalize_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("/api/images", "/api/images"),
        ("/api/images/", "/api/images/"),
        ("/api//images", "/api/images"),
        ("//api///images//x", "/api/images/x"),
        ("/api/./images", "/api/images"),
        ("/api/x/../images", "/api/images"),
        ("/api/images/..", "/api/"),
        ("/api/images/.", "/api/images/"),
        ("/../../api/images", "/api/images"),  # never above the root
        ("/..", "/"),
        ("/.", "/"),
        ("/api/%69mages", "/api/images"),  # unreserved escapes are decoded
        ("/api/%7Euser/%2d%5F", "/api/~user/-_"),
        ("/api/caf%c3%a9", "/api/caf%C3%A9"),  # other escapes are upper-cased, kept encoded
        ("/a%20b", "/a%20b"),
        ("/a%25b", "/a%25b"),  # an encoded percent stays encoded
        ("/api/café", "/api/caf%C3%A9"),  # raw non-ASCII is encoded as UTF-8
        ("/a b", "/a%20b"),
        ("/a;b=c/d:e@f", "/a;b=c/d:e@f"),
        ("/api/images...", "/api/images..."),  # dots inside a segment are just characters
        ("/api/..images", "/api/..images"),
    ],
)
def test_paths_are_normalized_to_one_canonical_form(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "api/images",
        "*",
        "http://example.com/api/images",
        "/api/images%2f..%2fadmin",
        "/api%2Fimages",
        "/api/%2e%2e/admin",
        "/api/%2E/images",
        "/api/images/.%2e/admin",
        "/api\\images",
        "/api/%5cimages",
        "/api/%5Cimages",
        "/api/images%00.png",
        "/api/images%0a",
        "/api/images%7f",
        "/api/ima\x00ges",
        "/api/images\r\nX-Injected: 1",
        "/api/images\t",
        "/api/%zzimages",
        "/api/images%4",
        "/api/images%",
        "/api/images?x=1",
        "/api/images/..;/admin",
        "/api/.;/images",
    ],
)
def test_unsafe_or_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(BadPath):
        normalize_path(raw)


def test_an_encoded_traversal_cannot_reach_a_path_the_route_table_did_not_see() -> None:
    # /api/images/..%2f..%2fadmin would be /admin to an upstream that decodes %2F: refused.
    with pytest.raises(BadPath):
        normalize_path("/api/images/..%2F..%2Fadmin")
    assert normalize_path("/api/images/../../admin") == "/admin"


path_chars = st.sampled_from(
    [*"/.%abcAZ09-_~:;@!$&'()*+,=é ", "%2", "%2f", "%2e", "%41", "%c3%a9", "..", "//"]
)
raw_paths = st.lists(path_chars, max_size=30).map(lambda parts: "/" + "".join(parts))


@given(raw=raw_paths)
def test_normalizing_twice_changes_nothing(raw: str) -> None:
    try:
        once = normalize_path(raw)
    except BadPath:
        return
    assert normalize_path(once) == once


@given(raw=raw_paths | st.text().map(lambda text: "/" + text))
def test_a_normalized_path_has_no_dot_segments_empty_segments_or_encoded_separators(raw: str) -> None:
    try:
        path = normalize_path(raw)
    except BadPath:
        return
    assert path.startswith("/")
    assert "/../" not in path
    assert "/./" not in path
    assert "//" not in path
    assert not path.endswith(("/..", "/."))
    lowered = path.lower()
    assert "%2f" not in lowered
    assert "%2e" not in lowered
    assert "%5c" not in lowered
    assert "\\" not in path
    assert all(0x20 < ord(ch) < 0x7F for ch in path)  # pure, printable ASCII
