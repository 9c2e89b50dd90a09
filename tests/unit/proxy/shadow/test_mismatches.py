"""The kept shadow mismatches: the last N per route, newest first, bounded in routes and in body bytes,
credentials never kept; pure bookkeeping with the time passed in."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.shadow.compare import Answer, Difference
from proxy.shadow.mismatches import AnswerView, Mismatch, MismatchStore


def mismatch(route: str, at: float, body: bytes = b"{}", request_id: str | None = None) -> Mismatch:
    view = AnswerView.of(
        Answer(200, {"content-type": "application/json", "set-cookie": "sid=1"}, body),
        latency_s=0.01,
        max_body_bytes=16,
    )
    return Mismatch(
        at=at,
        route=route,
        request_id=request_id or f"r{at}",
        method="GET",
        path="/p",
        differences=(Difference.of("status", "(status)", "200 != 500"),),
        noise=(),
        primary=view,
        candidate=view,
    )


def text_view(body: bytes, limit: int = 64, media: str = "text/plain; charset=utf-8") -> AnswerView:
    return AnswerView.of(Answer(200, {"content-type": media}, body), latency_s=0, max_body_bytes=limit)


def test_the_store_keeps_the_last_n_per_route_newest_first() -> None:
    store = MismatchStore(keep=3)
    for i in range(10):
        store.record(mismatch("images", float(i)))
    store.record(mismatch("other", 100.0), keep=1)

    assert [m.at for m in store.latest("images", 20)] == [9.0, 8.0, 7.0]
    assert [m.at for m in store.latest("images", 2)] == [9.0, 8.0]
    assert [m.at for m in store.latest(None, 2)] == [100.0, 9.0]
    assert store.latest("nobody") == []
    assert store.routes() == {"images": 3, "other": 1}


def test_the_store_forgets_the_least_recent_route_beyond_its_bound() -> None:
    store = MismatchStore(max_routes=2)
    for name in ("a", "b", "c"):
        store.record(mismatch(name, 1.0))
    assert set(store.routes()) == {"b", "c"}


def test_stored_bodies_are_truncated_and_cookies_redacted() -> None:
    record = mismatch("images", 1.0, body=json.dumps({"x": "y" * 100}).encode()).to_json()

    assert record["primary"]["body"] == '{"x": "yyyyyyyyy'
    assert record["primary"]["body_truncated"] is True
    assert record["primary"]["body_size"] == 109
    assert record["primary"]["headers"]["set-cookie"] == "<redacted>"
    assert record["differences"] == [
        {"kind": "status", "path": "(status)", "detail": "status at (status): 200 != 500"}
    ]


def test_a_binary_body_is_stored_as_base64() -> None:
    png = Answer(200, {"content-type": "image/png"}, b"\x89PNG\r\n")
    view = AnswerView.of(png, latency_s=0, max_body_bytes=64)
    assert (view.encoding, view.body) == ("base64", "iVBORw0K")


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=300), limit=st.integers(1, 64))
def test_a_stored_body_never_exceeds_its_bound(body: bytes, limit: int) -> None:
    view = AnswerView.of(Answer(200, {"content-type": "text/plain"}, body), latency_s=0, max_body_bytes=limit)
    assert len(view.body) <= max(limit, 4 * ((limit + 2) // 3))
    assert view.truncated == (len(body) > limit)


def test_a_route_that_lowers_its_keep_drops_its_oldest_and_one_that_raises_it_keeps_what_it_had() -> None:
    store = MismatchStore(keep=5)
    for i in range(5):
        store.record(mismatch("images", float(i)))

    store.record(mismatch("images", 5.0), keep=2)
    assert [m.at for m in store.latest("images")] == [5.0, 4.0]

    store.record(mismatch("images", 6.0), keep=4)
    assert [m.at for m in store.latest("images")] == [6.0, 5.0, 4.0]
    assert store.count("images") == 3


@pytest.mark.parametrize("keep", [0, -3])
def test_a_keep_below_one_still_keeps_the_newest(keep: int) -> None:
    store = MismatchStore()
    store.record(mismatch("images", 1.0), keep=keep)
    store.record(mismatch("images", 2.0), keep=keep)
    assert [m.at for m in store.latest("images")] == [2.0]


def test_a_route_that_records_again_is_the_most_recent_and_outlives_a_quieter_one() -> None:
    store = MismatchStore(max_routes=2)
    store.record(mismatch("a", 1.0))
    store.record(mismatch("b", 2.0))
    store.record(mismatch("a", 3.0))
    store.record(mismatch("c", 4.0))

    assert list(store.routes()) == ["a", "c"]  # least recent first
    assert store.count("b") == 0
    assert store.latest("b") == []


def test_across_routes_the_newest_comes_first_by_time_not_by_the_order_of_recording() -> None:
    store = MismatchStore()
    store.record(mismatch("late", 30.0))
    store.record(mismatch("early", 10.0))
    store.record(mismatch("late", 40.0))
    store.record(mismatch("early", 20.0))

    assert [m.at for m in store.latest()] == [40.0, 30.0, 20.0, 10.0]
    assert [m.at for m in store.latest(limit=3)] == [40.0, 30.0, 20.0]


def test_within_a_route_two_mismatches_at_the_same_time_come_newest_recorded_first() -> None:
    store = MismatchStore()
    store.record(mismatch("images", 1.0, request_id="first"))
    store.record(mismatch("images", 1.0, request_id="second"))

    assert [m.request_id for m in store.latest("images")] == ["second", "first"]
    assert [m.request_id for m in store.latest()] == ["second", "first"]


def test_across_routes_two_mismatches_at_the_same_time_come_newest_recorded_first() -> None:
    store = MismatchStore()
    store.record(mismatch("images", 1.0, request_id="first"))
    store.record(mismatch("orders", 1.0, request_id="second"))
    store.record(mismatch("images", 1.0, request_id="third"))

    assert [m.request_id for m in store.latest()] == ["third", "second", "first"]


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_lists_nothing(limit: int) -> None:
    store = MismatchStore()
    store.record(mismatch("images", 1.0))
    assert store.latest("images", limit) == []
    assert store.latest(None, limit) == []


def test_the_store_views_answers_with_its_own_body_bound() -> None:
    view = MismatchStore(max_body_bytes=4).view(Answer(200, {"content-type": "text/plain"}, b"abcdefgh"), 0.5)
    assert (view.body, view.size, view.truncated, view.latency_s) == ("abcd", 8, True, 0.5)


@pytest.mark.parametrize("name", ["cookie", "set-cookie", "authorization", "proxy-authorization"])
def test_every_credential_header_is_redacted_and_other_headers_are_kept_as_they_were(name: str) -> None:
    answer = Answer(200, {name: "secret", "etag": '"v1"', "content-type": "text/plain"}, b"ok")
    headers = AnswerView.of(answer, latency_s=0, max_body_bytes=8).to_json()["headers"]
    assert headers == {name: "<redacted>", "etag": '"v1"', "content-type": "text/plain"}


@pytest.mark.parametrize(
    "media",
    [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/problem+json",
        "application/vnd.api+json",
        "text/html",
        "application/xml",
    ],
)
def test_text_and_json_bodies_are_stored_as_text_whatever_the_case_of_their_media_type(media: str) -> None:
    view = text_view(b'{"ok": true}', media=media)
    assert (view.encoding, view.body) == ("utf-8", '{"ok": true}')


def test_a_body_of_no_declared_type_is_stored_as_base64() -> None:
    view = AnswerView.of(Answer(200, {}, b"hello"), latency_s=0, max_body_bytes=64)
    assert (view.encoding, view.body) == ("base64", "aGVsbG8=")


def test_a_character_cut_in_half_by_the_bound_is_dropped_and_the_rest_stays_text() -> None:
    view = text_view("éééé".encode(), limit=5)  # two bytes each: the cut falls inside the third
    assert (view.encoding, view.body, view.size, view.truncated) == ("utf-8", "éé", 8, True)


def test_text_that_is_not_utf8_early_on_is_stored_as_base64_rather_than_mangled() -> None:
    view = text_view(b"\xffabcdef")
    assert (view.encoding, view.body) == ("base64", "/2FiY2RlZg==")


def test_an_invalid_byte_at_the_end_of_an_uncut_text_body_is_not_silently_dropped() -> None:
    view = text_view(b"abcd\xff")
    assert (view.encoding, view.body, view.truncated) == ("base64", "YWJjZP8=", False)


def test_a_compressed_body_is_stored_and_measured_decoded() -> None:
    answer = Answer(
        200,
        {"content-type": "application/json", "content-encoding": "gzip"},
        gzip.compress(b'{"a": 1}'),
    )
    view = AnswerView.of(answer, latency_s=0, max_body_bytes=64)
    assert (view.encoding, view.body, view.size, view.truncated) == ("utf-8", '{"a": 1}', 8, False)


def test_a_mismatch_record_carries_its_request_both_answers_and_the_noise_it_did_not_count() -> None:
    view = text_view(b"ok")
    noise = (Difference.of("body_value", "created", "1 != 2"),)
    record = Mismatch(
        at=1700000000.5,
        route="images",
        request_id="req-1",
        method="POST",
        path="/api/images",
        differences=(),
        noise=noise,
        primary=view,
        candidate=AnswerView.of(Answer(500, {}, b""), latency_s=0.123456789, max_body_bytes=4),
    ).to_json()

    assert {k: record[k] for k in ("at", "route", "request_id", "method", "path")} == {
        "at": 1700000000.5,
        "route": "images",
        "request_id": "req-1",
        "method": "POST",
        "path": "/api/images",
    }
    assert record["differences"] == []
    assert record["noise"] == [
        {"kind": "body_value", "path": "created", "detail": "body_value at created: 1 != 2"}
    ]
    assert record["candidate"] == {
        "status": 500,
        "headers": {},
        "body": "",
        "body_encoding": "base64",
        "body_size": 0,
        "body_truncated": False,
        "latency_s": 0.123457,
    }
    assert record["primary"]["body"] == "ok"
