"""The bytes of a refusal the server answers itself."""

from __future__ import annotations

from proxy.dataplane.http1.refusals import error_bytes


def test_a_raw_refusal_is_a_complete_http_response_with_the_json_error_shape() -> None:
    raw = error_bytes(408, "Request Timeout", "request_timeout", "too slow")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert body == b'{"error": {"code": "request_timeout", "message": "too slow"}}'

