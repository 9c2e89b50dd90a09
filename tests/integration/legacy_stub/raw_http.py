"""A byte-exact HTTP/1.1 exchange over a loopback socket, for what an HTTP client would normalise."""

from __future__ import annotations

import asyncio
import json
from typing import Any


async def exchange(host: str, port: int, request: bytes, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send `request` as is (it should carry Connection: close); return the status and the raw body."""

    async def run() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            await writer.drain()
            raw = await reader.read(-1)
        finally:
            writer.close()
            await writer.wait_closed()
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, body

    return await asyncio.wait_for(run(), timeout)


async def exchange_json(host: str, port: int, request: bytes) -> tuple[int, Any]:
    status, body = await exchange(host, port, request)
    return status, json.loads(body)
