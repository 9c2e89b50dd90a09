"""Routes that let proxy transparency be tested against the real stub: /api/echo and /api/export.

/api/echo (any method, also /api/echo/<anything>) answers with exactly what arrived: method, raw path,
raw query string, headers as received (original names, order and repeats), and the body.
/api/export?mb=N streams N MiB with chunked transfer encoding, one MiB at a time, never buffered.
"""

from __future__ import annotations

import base64
import hashlib
import re

from aiohttp import web

from legacy_stub.http_io import invalid, read_bounded
from legacy_stub.keys import SETTINGS

__all__ = ["EXPORT_BLOCK", "MIB", "add_routes"]

MIB = 1024 * 1024
# A deterministic MiB: a proxy test can check the bytes, not only their count.
EXPORT_BLOCK = bytes(range(256)) * (MIB // 256)
_DIGITS = re.compile(r"^[0-9]{1,6}$")


async def echo(request: web.Request) -> web.Response:
    body = await read_bounded(request, request.app[SETTINGS].max_echo_bytes)
    # raw_path is the request target as it came off the wire: no decoding, no normalisation.
    path, _, query = request.raw_path.partition("?")
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in request.raw_headers:
        name = raw_name.decode("latin-1")
        headers.setdefault(name, []).append(raw_value.decode("utf-8", errors="replace"))
    return web.json_response(
        {
            "method": request.method,
            "path": path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
            "body_bytes": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_base64": base64.b64encode(body).decode("ascii"),
        }
    )


async def export(request: web.Request) -> web.StreamResponse:
    limit = request.app[SETTINGS].max_export_mb
    raw = request.query.get("mb", "1")
    if not _DIGITS.match(raw) or not 1 <= int(raw) <= limit:
        raise invalid("mb", f"must be an integer between 1 and {limit}")
    mebibytes = int(raw)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": 'attachment; filename="export.bin"',
            "X-Export-Bytes": str(mebibytes * MIB),
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(mebibytes):
        await response.write(EXPORT_BLOCK)  # write() waits for the socket to drain: memory stays flat
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/api/echo", echo)
    app.router.add_route("*", "/api/echo/{tail:.*}", echo)
    app.router.add_get("/api/export", export)
