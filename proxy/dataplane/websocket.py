"""WebSocket pass-through at the byte level: the client's upgrade goes to the upstream as is; once the
upstream answers 101, the client gets that 101 and from then on bytes flow both ways until either side
closes (frames, close codes and extensions are the two ends' business: nothing is parsed or rebuilt).

Owns opening the upstream connection for an upgrade (TLS verified as for every https:// upstream),
reading the upstream's answer head, and the relay. An upstream that refuses (4xx/5xx) is answered
`upgrade_refused` with its status; one that answers anything else without switching is a protocol error
(502). Owns no routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping

from proxy.client import UpstreamError
from proxy.dataplane.refusals import send_error
from proxy.dataplane.trip import Trip
from proxy.routing import UpstreamSpec
from proxy.upstream.wire import parse_origin

__all__ = ["is_upgrade", "relay"]

_MAX_HEAD = 64 * 1024  # the upstream's answer head
_CHUNK = 64 * 1024
_CLOSE_GRACE_S = 5.0  # after one side ended: how long the other may finish its close handshake


def is_upgrade(headers: Mapping[str, str]) -> bool:
    upgrade = headers.get("Upgrade")
    return upgrade is not None and upgrade.lower() == "websocket"


async def relay(trip: Trip, spec: UpstreamSpec) -> None:
    request, headers = trip.request, trip.headers
    assert headers is not None
    origin = parse_origin(spec.url)
    context = ssl.create_default_context(cafile=spec.ca_bundle) if origin.tls else None
    try:
        async with asyncio.timeout(spec.connect_timeout_s):
            reader, writer = await asyncio.open_connection(
                origin.host, origin.port, ssl=context, server_hostname=origin.host if context else None,
                limit=_MAX_HEAD,
            )  # fmt: skip
    except (OSError, TimeoutError) as exc:
        timeout = isinstance(exc, TimeoutError)
        detail = f"upgrade to {origin.authority}: {exc or type(exc).__name__}"
        raise UpstreamError("timeout" if timeout else "connect", timeout=timeout, detail=detail,
                            connection_failure=True) from exc  # fmt: skip
    try:
        lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {origin.authority}",
                 "Connection: Upgrade", f"Upgrade: {request.headers.get('Upgrade', 'websocket')}",
                 *(f"{name}: {value}" for name, value in headers.items())]  # fmt: skip
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        async with asyncio.timeout(spec.connect_timeout_s + spec.timeout_s):
            status, reason, answer = _head(await reader.readuntil(b"\r\n\r\n"))
        if status != 101:
            await _refused(trip, status, reason)
            return
        await trip.responder.start(101, answer)
        transport, early = trip.responder.detach()
        await _pipe(transport, early, reader, writer)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
        raise UpstreamError("protocol", timeout=False, detail=f"upgrade: {type(exc).__name__}") from exc
    except TimeoutError as exc:
        detail = "the upstream did not answer the upgrade"
        raise UpstreamError("timeout", timeout=True, detail=detail) from exc
    finally:
        writer.close()


def _head(raw: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    status_line, *rest = raw.decode("latin-1").split("\r\n")
    version, _, tail = status_line.partition(" ")
    code, _, reason = tail.partition(" ")
    if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
        raise ValueError("not an HTTP/1.x status line")
    answer = [
        (name.strip(), value.strip()) for line in rest if line for name, _, value in [line.partition(":")]
    ]
    return int(code), reason, answer


async def _refused(trip: Trip, status: int, reason: str) -> None:
    if status < 400:
        detail = f"answered {status} without switching protocols"
        raise UpstreamError("protocol", timeout=False, detail=detail)
    message = f"the upstream refused the upgrade: {reason or status}"
    await send_error(trip.responder, status, "upgrade_refused", message, trip.request_id)


async def _pipe(
    transport: asyncio.Transport, early: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Bytes both ways, each direction with backpressure; when one side ends, the other gets an EOF and
    a short grace to finish its close handshake."""
    loop = asyncio.get_running_loop()
    client_reader = asyncio.StreamReader(limit=_CHUNK)
    protocol = asyncio.StreamReaderProtocol(client_reader)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    client_writer = asyncio.StreamWriter(transport, protocol, client_reader, loop)
    if early:
        client_reader.feed_data(early)
    transport.resume_reading()
    up = asyncio.ensure_future(_copy(client_reader, writer))
    down = asyncio.ensure_future(_copy(reader, client_writer))
    try:
        _, pending = await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_GRACE_S)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        client_writer.close()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
