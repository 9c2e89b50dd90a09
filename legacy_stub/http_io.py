"""Reading request bodies safely, and the stub's one error exception (ApiError -> JSON error shape).

Owns body size bounds, content-type checks and JSON decoding for every route; owns no route.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from strangler_common.web import Handler, json_error

__all__ = ["ApiError", "api_errors", "invalid", "read_bounded", "read_json"]


class ApiError(Exception):
    """An error answered as {"error": {"code", "message"}} with `status`."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def invalid(field: str, message: str) -> ApiError:
    text = f"{field}: {message}" if field else message
    return ApiError(400, "invalid_request", text)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.code, exc.message, headers=exc.headers)


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 payload_too_large as soon as it is known to exceed `limit` bytes."""
    too_large = ApiError(413, "payload_too_large", f"the request body must not exceed {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def is_json_content_type(request: web.Request) -> bool:
    mime = request.content_type.lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


async def read_json(request: web.Request, limit: int) -> Any:
    """Decode a JSON body: 415 for another media type, 413 beyond `limit`, 400 for malformed JSON."""
    if not is_json_content_type(request):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {request.content_type or 'none'}",
        )
    raw = await read_bounded(request, limit)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid("", "the body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise invalid("", f"the body is not valid JSON ({exc.msg} at {where})") from None
