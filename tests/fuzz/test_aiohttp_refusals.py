"""The differential fuzz's reference: how the old aiohttp front door worded aiohttp's parser refusals, and
the old handler's live limit check."""

from __future__ import annotations

from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.resilience import Limits
from tests.fuzz.aiohttp_refusals import parser_bounds, refusal, request_refusal

SMALL = Limits(max_headers=3, max_header_bytes=300, max_url_bytes=300)


@given(url=st.integers(256, 100_000), header=st.integers(256, 100_000))
def test_the_parser_bounds_tell_a_long_request_line_from_a_long_header_line(url: int, header: int) -> None:
    bounds = parser_bounds(Limits(max_url_bytes=url, max_header_bytes=header))
    assert bounds["max_line_size"] != bounds["max_field_size"]
    assert bounds["max_line_size"] > url
    line = LineTooLong(b"/aaa", bounds["max_line_size"])
    field = LineTooLong(b"X-A: b", bounds["max_field_size"])
    assert refusal(line, 400, bounds)[:2] == (414, "uri_too_long")
    assert refusal(field, 400, bounds)[:2] == (431, "header_too_large")


def test_parser_refusals_are_worded_without_echoing_the_input() -> None:
    bounds = parser_bounds(Limits())
    secret = "Authorization: Bearer s3cret"
    for exc in (
        BadHttpMessage("Too many headers received"),
        BadHttpMessage("Transfer-Encoding can't be present with Content-Length"),
        BadHttpMethod(secret),
        BadHttpMessage(secret),
        LineTooLong(secret.encode(), 1),
    ):
        status, code, message = refusal(exc, 400, bounds)
        assert 400 <= status < 500
        assert "s3cret" not in message
        assert code
    assert refusal(None, 500, bounds) == (500, "internal_error", "the proxy failed to handle this request")


def test_a_request_within_the_limits_passes() -> None:
    assert request_refusal("/x?y=1", [(b"Host", b"a")], SMALL) is None


def refused(target: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    answer = request_refusal(target, headers, SMALL)
    assert answer is not None
    return answer[0], answer[1]


def test_each_limit_answers_its_status() -> None:
    assert refused("/" + "a" * 300, []) == (414, "uri_too_long")
    assert refused("/", [(b"X-%d" % i, b"v") for i in range(4)]) == (431, "too_many_headers")
    assert refused("/", [(b"X-A", b"a" * 150), (b"X-B", b"b" * 150)]) == (431, "header_too_large")
