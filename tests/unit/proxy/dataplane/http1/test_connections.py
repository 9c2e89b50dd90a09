"""Connections: the cap (503 beyond it), a client that goes away cancels its handler, and the graceful
drain of shutdown()."""

from __future__ import annotations

import asyncio

from proxy.dataplane.http1 import Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import WAIT_S, ServeFactory, one, request, until


async def test_connections_beyond_max_connections_get_a_json_503_and_are_closed(serve: ServeFactory) -> None:
    served = await serve(max_connections=3)
    held = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(3)]
    try:
        await until(lambda: served.server.connections == 3)
        answer = one(await served.exchange(request("/x")))
        assert (answer.status, answer.error) == (503, "too_many_connections")
        assert served.events == ["too_many_connections"]
        assert served.seen == []
    finally:
        for _, writer in held:
            writer.close()
    await until(lambda: served.server.connections == 0)
    assert one(await served.exchange(request("/x"))).status == 200  # room again


async def test_the_cap_is_read_live(serve: ServeFactory) -> None:
    served = await serve()
    served.limits = served.limits.model_copy(update={"max_connections": 1})  # a reload lowers it
    _, holder = await asyncio.open_connection("127.0.0.1", served.port)
    await until(lambda: served.server.connections == 1)
    assert one(await served.exchange(request("/x"))).status == 503
    served.limits = served.limits.model_copy(update={"max_connections": 2})
    assert one(await served.exchange(request("/x"))).status == 200
    holder.close()


async def test_a_client_that_disconnects_cancels_its_handler(serve: ServeFactory) -> None:
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def holding(request: Request, responder: Responder) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()  # an upstream that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise

    served = await serve(holding)
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/hold", close=False))
    await asyncio.wait_for(entered.wait(), WAIT_S)
    writer.close()
    await asyncio.wait_for(cancelled.wait(), WAIT_S)
    await until(lambda: served.server.connections == 0)


async def test_a_client_that_leaves_mid_download_cancels_its_handler(serve: ServeFactory) -> None:
    cancelled = asyncio.Event()

    async def endless(request: Request, responder: Responder) -> None:
        await responder.start(200, [])
        try:
            while True:
                await responder.write(b"x" * 65536)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        except ConnectionError:
            cancelled.set()

    served = await serve(endless)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", close=False))
    await asyncio.wait_for(reader.readexactly(100_000), WAIT_S)
    writer.close()
    await asyncio.wait_for(cancelled.wait(), WAIT_S)


async def test_shutdown_closes_idle_connections_at_once_and_busy_ones_after_their_answer(
    serve: ServeFactory,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Request, responder: Responder) -> None:
        if request.path == "/slow":
            entered.set()
            await release.wait()
        await responder.send(200, [], b"done")

    served = await serve(slow)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", served.port)
    idle_writer.write(request("/quick", close=False))
    await asyncio.wait_for(idle_reader.readuntil(b"done"), WAIT_S)
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", served.port)
    busy_writer.write(request("/slow", close=False))
    await asyncio.wait_for(entered.wait(), WAIT_S)

    draining = asyncio.ensure_future(served.server.shutdown(WAIT_S))
    assert await asyncio.wait_for(idle_reader.read(), WAIT_S) == b""  # closed at once, without a word
    assert not draining.done()
    release.set()
    answer = one(await asyncio.wait_for(busy_reader.read(), WAIT_S))
    assert (answer.status, answer.body, answer.headers["connection"]) == (200, b"done", "close")
    await asyncio.wait_for(draining, WAIT_S)
    assert served.server.connections == 0
    idle_writer.close()
    busy_writer.close()


async def test_shutdown_cuts_and_cancels_what_is_still_busy_after_its_timeout(serve: ServeFactory) -> None:
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(request: Request, responder: Responder) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    served = await serve(stuck)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", close=False))
    await asyncio.wait_for(entered.wait(), WAIT_S)
    await asyncio.wait_for(served.server.shutdown(0.1), WAIT_S)
    assert cancelled.is_set()  # shutdown returns once the cancelled handlers have unwound
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
    writer.close()


async def test_connections_arriving_during_shutdown_are_closed(serve: ServeFactory) -> None:
    served = await serve()
    await served.server.shutdown(0.1)
    assert await served.exchange(request("/x")) == b""
