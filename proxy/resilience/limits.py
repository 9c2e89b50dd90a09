"""The request limits checked on every parsed request, with the live `limits` block (pure).

Owns request_refusal(): the request target's length, the number and total size of header
lines. The http1 server already refuses what passes the live bounds (dataplane/http1/); this
applies the current routes.yaml values, so a lowered limit takes effect on reload, in the same words.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.config.resilience import Limits

__all__ = ["Refusal", "request_refusal"]

Refusal = tuple[int, str, str]  # status, error code, message


def request_refusal(
    target: str, raw_headers: Sequence[tuple[bytes, bytes]], limits: Limits
) -> Refusal | None:
    """None when the request is within limits; otherwise the JSON error to answer with."""
    if len(target) > limits.max_url_bytes:
        return 414, "uri_too_long", f"the request target is longer than {limits.max_url_bytes} bytes"
    if len(raw_headers) > limits.max_headers:
        return 431, "too_many_headers", f"the request has more than {limits.max_headers} header lines"
    size = 0
    for name, value in raw_headers:
        size += len(name) + len(value) + 4  # "name: value\r\n"
    if size > limits.max_header_bytes:
        return 431, "header_too_large", f"the request headers are larger than {limits.max_header_bytes} bytes"
    return None
