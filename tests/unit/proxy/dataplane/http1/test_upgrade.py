"""After a 101 the handler takes the socket over (detach) and relays bytes itself; an upgrade answered
otherwise closes the connection, and nothing the client sent after its head is parsed as HTTP."""

from __future__ import annotations

import asyncio

from proxy.dataplane.http1 import Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import WAIT_S, ServeFactory, one, request

UPGRADE = ("Connection: Upgrade", "Upgrade: shout")


class Shout(asyncio.Protocol):
    """The protocol after the switch: every byte comes back upper-cased."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


async def switching(request: Request, responder: Responder) -> None:
    if not request.upgrade:
        await responder.send(200, [], b"plain")
        return
    body = await request.content.read()
    await responder.start(101, [("Upgrade", "shout"), ("X-Body", body.decode())])
    transport, early = responder.detach()
    protocol = Shout(transport)
    transport.set_protocol(protocol)
    protocol.data_received(early)
    transport.resume_reading()


async def test_after_a_101_the_socket_is_handed_over_with_what_the_client_sent_early(
    serve: ServeFactory,
) -> None:
    served = await serve(switching)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/ws", *UPGRADE, close=False) + b"early bytes;")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nUpgrade: shout\r\n" in head
    assert b"\r\nConnection: upgrade\r\n" in head
    assert await asyncio.wait_for(reader.readexactly(12), WAIT_S) == b"EARLY BYTES;"
    writer.write(b"GET / HTTP/1.1\r\n\r\n")  # no longer HTTP to the server: relayed as bytes
    assert await asyncio.wait_for(reader.readexactly(18), WAIT_S) == b"GET / HTTP/1.1\r\n\r\n".upper()
    assert served.server.connections == 0  # the socket is the relay's now
    writer.close()


async def test_an_upgrade_request_with_a_content_length_body_is_read_before_the_switch(
    serve: ServeFactory,
) -> None:
    served = await serve(switching)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/ws", *UPGRADE, "Content-Length: 5", method="POST", close=False) + b"helloafter")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert b"\r\nX-Body: hello\r\n" in head
    assert await asyncio.wait_for(reader.readexactly(5), WAIT_S) == b"AFTER"
    writer.close()


async def test_an_upgrade_answered_without_a_101_closes_the_connection(serve: ServeFactory) -> None:
    async def declining(request: Request, responder: Responder) -> None:
        await responder.send(200, [], b"no switch")

    served = await serve(declining)
    raw = await served.exchange(request("/ws", *UPGRADE, close=False) + request("/next", close=False))
    answer = one(raw)  # one answer: what followed the upgrade head is nobody's
    assert (answer.status, answer.body, answer.headers["connection"]) == (200, b"no switch", "close")
    assert [r.path for r in served.seen] == ["/ws"]


async def test_a_101_to_a_request_that_did_not_ask_for_it_is_refused(serve: ServeFactory) -> None:
    errors: list[BaseException] = []

    async def eager(request: Request, responder: Responder) -> None:
        try:
            await responder.start(101, [("Upgrade", "shout")])
        except ValueError as exc:
            errors.append(exc)
            await responder.send(200, [], b"plain")

    served = await serve(eager)
    assert one(await served.exchange(request("/x"))).status == 200
    assert len(errors) == 1


async def test_an_upgrade_request_with_a_chunked_body_is_refused(serve: ServeFactory) -> None:
    served = await serve(switching)
    data = request("/ws", *UPGRADE, "Transfer-Encoding: chunked", method="POST") + b"0\r\n\r\n"
    answer = one(await served.exchange(data))
    assert (answer.status, answer.error) == (400, "bad_request")
    assert served.seen == []
