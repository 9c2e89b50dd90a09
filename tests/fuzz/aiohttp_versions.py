"""Request lines the front door answers itself, before the app: an HTTP version other than 1.0 and 1.1
(505, answered as HTTP/1.1) and CONNECT (405: no tunnels). Wraps the aiohttp Server's request factory
and handler (the internals this relies on are pinned by test_aiohttp_front_door_internals.py); part
of the differential fuzz's reference front door.
"""

from __future__ import annotations

from typing import Any

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.web_request import BaseRequest

__all__ = ["refuse_other_versions"]

_BAD_VERSION = web.RequestKey("frontdoor_bad_version", bool)


def _refused(status: int, code: str, message: str) -> web.StreamResponse:
    response = web.json_response({"error": {"code": code, "message": message}}, status=status)
    response.force_close()
    return response


def refuse_other_versions(server: web.Server) -> None:
    """Only HTTP/1.0 and 1.1 are spoken here. aiohttp accepts `HTTP/2.0` in a request line and echoes it in
    the status line of its answer; such a request gets a 505 written as HTTP/1.1, and is never forwarded.
    CONNECT gets a 405 here too (authority-form targets never reach the app's handler)."""
    make_request, handle = server.request_factory, server.request_handler

    def factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
        bad = message.version not in (HttpVersion10, HttpVersion11)
        if bad:
            message = message._replace(version=HttpVersion11, should_close=True)
        request = make_request(message, payload, protocol, writer, task)
        if bad:
            request[_BAD_VERSION] = True
        return request

    async def handler(request: BaseRequest) -> web.StreamResponse:
        if request.get(_BAD_VERSION):
            return _refused(505, "http_version_not_supported", "only HTTP/1.0 and 1.1 are spoken here")
        if request.method == "CONNECT":  # aiohttp would route its authority-form target to a plain 404
            return _refused(405, "method_not_allowed", "CONNECT is not supported: no tunnels here")
        return await handle(request)

    server.request_factory = factory
    server.request_handler = handler
