"""WebSocket pass-through: accept the client's upgrade only once the upstream has accepted its own.

Owns the relay of messages both ways and of the close code. Owns no routing.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from proxy.client import UpstreamError, classify
from strangler_common.web import json_error

# The handshake is per hop: the client library negotiates its own key, version and extensions.
_HANDSHAKE = (
    "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
)  # fmt: skip
# Codes that may not be sent in a close frame; an abnormal end on one side is a "going away" on the other.
_UNSENDABLE = {1005: 1000, 1006: 1001, 1015: 1001}


def is_upgrade(headers: CIMultiDictProxy[str]) -> bool:
    upgrade = headers.get("Upgrade")
    return upgrade is not None and upgrade.lower() == "websocket"


async def relay(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    *,
    handshake_timeout_s: float,
    max_msg_size: int,
) -> web.StreamResponse:
    for name in _HANDSHAKE:
        headers.popall(name, None)
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    protocols = [p.strip() for p in offered.split(",") if p.strip()]
    try:
        async with asyncio.timeout(handshake_timeout_s):
            upstream = await session.ws_connect(
                url,
                headers=headers,
                protocols=protocols,
                max_msg_size=max_msg_size,
                autoping=True,
                autoclose=False,
            )
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status < 400:  # answered without switching protocols: not a usable WebSocket upstream
            raise UpstreamError("protocol", timeout=False, detail=exc.message) from exc
        message = f"the upstream refused the upgrade: {exc.message}"
        request_id = headers.get("X-Request-ID", "")
        return json_error(
            exc.status,
            "upgrade_refused",
            message,
            headers={"X-Request-ID": request_id},
            request_id=request_id,
        )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise classify(exc) from exc
    try:
        client = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            max_msg_size=max_msg_size,
            autoping=True,
            autoclose=False,  # the close handshake is relayed end to end, not answered here
        )
        await client.prepare(request)
        await _relay(client, upstream)
        return client
    finally:
        if not upstream.closed:  # cancelled (the client vanished) or failed: the upstream must know
            await upstream.close(code=1001)


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _relay(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways until one side closes; then close the other with the same code."""
    to_upstream = asyncio.ensure_future(_pump(client, upstream))
    to_client = asyncio.ensure_future(_pump(upstream, client))
    try:
        done, _ = await asyncio.wait((to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED)
        first = to_upstream if to_upstream in done else to_client
        code, message = (1011, b"") if first.exception() is not None else first.result()
        closer, other = (client, upstream) if first is to_upstream else (upstream, client)
        await other.close(code=code, message=message)  # interrupts the other pump's receive()
        await closer.close(code=code, message=message)  # answers the side that closed first
    finally:
        for pump in (to_upstream, to_client):
            pump.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def _pump(source: Socket, sink: Socket) -> tuple[int, bytes]:
    """Forward data messages; return the close code and reason the source ended with."""
    while True:
        msg = await source.receive()
        if msg.type is WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type is WSMsgType.CLOSE:
            code = msg.data if isinstance(msg.data, int) else 1000
            return _UNSENDABLE.get(code, code), (msg.extra or "").encode()
        elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            code = source.close_code if source.close_code is not None else 1006
            return _UNSENDABLE.get(code, code), b""
