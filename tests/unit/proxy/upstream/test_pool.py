"""Pool: keep-alive reuse, and every way a connection must not go back to the pool (or must leave it)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.upstream import Pool, Response
from tests.unit.proxy.upstream.conftest import WAIT_S, Raw, RawFactory, read_head, until

TIMEOUTS = {"connect_timeout_s": WAIT_S, "read_timeout_s": WAIT_S}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def get(pool: Pool, target: str = "/echo", method: str = "GET") -> tuple[Response, bytes]:
    response = await pool.request(method, target, [], **TIMEOUTS)
    body = await response.read(1 << 20)
    response.release()
    return response, body


def peer(response: Response) -> str:
    return dict(response.headers)["X-Peer"]


async def answer_each_request(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive: answer every request on the connection with OK until the client closes."""
    while True:
        try:
            raw.heads.append(await read_head(reader))
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)


async def test_sequential_requests_reuse_one_connection(peer_url: str) -> None:
    pool = Pool(peer_url)

    answers = [await get(pool) for _ in range(3)]

    assert len({peer(response) for response, _ in answers}) == 1
    assert [body for _, body in answers] == [b"empty"] * 3
    assert pool.idle == 1
    await pool.close()


async def test_concurrent_requests_each_take_a_connection_and_all_come_back(peer_url: str) -> None:
    pool = Pool(peer_url)

    answers = await asyncio.gather(*(get(pool) for _ in range(3)))

    assert len({peer(response) for response, _ in answers}) == 3
    assert pool.idle == 3
    reused = await get(pool)
    assert peer(reused[0]) in {peer(response) for response, _ in answers}
    await pool.close()


async def test_a_fixed_length_and_a_chunked_answer_are_read_whole_on_one_connection(peer_url: str) -> None:
    pool = Pool(peer_url)

    fixed, fixed_body = await get(pool, "/echo")
    chunked, chunked_body = await get(pool, "/chunked")

    assert (fixed.content_length, fixed.chunked, fixed_body) == (5, False, b"empty")
    assert (chunked.content_length, chunked.chunked, chunked_body) == (None, True, b"one;two;three")
    assert peer(fixed) == peer(chunked)
    await pool.close()


@pytest.mark.parametrize(
    ("method", "target"), [("HEAD", "/echo"), ("GET", "/status/204"), ("GET", "/status/304")]
)
async def test_bodyless_answers_leave_the_connection_reusable(
    peer_url: str, method: str, target: str
) -> None:
    pool = Pool(peer_url)

    bodyless, body = await get(pool, target, method)
    after, after_body = await get(pool, "/echo")

    assert body == b""
    assert (after.status, after_body) == (200, b"empty")
    assert peer(after) == peer(bodyless)
    await pool.close()


async def test_a_head_answer_without_length_followed_by_body_bytes_poisons_nothing(peer_url: str) -> None:
    pool = Pool(peer_url)

    # aiohttp answers HEAD on a streamed handler with neither length nor chunking, then sends the body
    head, body = await get(pool, "/chunked", "HEAD")
    after, after_body = await get(pool, "/echo")

    assert (head.status, body) == (200, b"")
    assert (after.status, after_body) == (200, b"empty")
    assert peer(after) != peer(head)
    await pool.close()


async def test_a_head_answer_announcing_a_body_does_not_wait_for_it(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.heads.append(await read_head(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        await answer_each_request(raw, reader, writer)

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    head, body = await get(pool, "/", "HEAD")
    after, after_body = await get(pool, "/")

    assert (head.status, head.content_length, body) == (200, 1000, b"")
    assert (after.status, after_body) == (200, b"ok")
    assert len(raw.peers) == 1  # the same connection carried both
    await pool.close()


async def test_a_body_after_a_head_answer_poisons_nothing(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(raw.peers) == 1:
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")  # a body HEAD must not have
        await answer_each_request(raw, reader, writer)

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    _, body = await get(pool, "/", "HEAD")
    after, after_body = await get(pool, "/")

    assert body == b""
    assert (after.status, after_body) == (200, b"ok")
    assert len(raw.peers) == 2  # the first connection was closed, not reused
    await pool.close()


async def test_connection_close_from_the_upstream_is_not_reused(peer_url: str) -> None:
    pool = Pool(peer_url)

    closing, body = await get(pool, "/close")
    after, _ = await get(pool, "/echo")

    assert (body, closing.keep_alive) == (b"closing", False)
    assert peer(after) != peer(closing)
    await pool.close()


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.0 200 OK\r\n\r\nold", b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"],
    ids=["read-to-eof", "content-length"],
)
async def test_an_http_1_0_upstream_without_keep_alive_is_read_and_not_reused(
    raw_server: RawFactory, answer: bytes
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer)
        writer.close()

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    first, first_body = await get(pool, "/")
    _, second_body = await get(pool, "/")

    assert (first.version, first.keep_alive, first_body, second_body) == ("1.0", False, b"old", b"old")
    assert len(raw.peers) == 2
    assert pool.idle == 0
    await pool.close()


async def test_an_idle_connection_the_upstream_closed_is_dropped_before_reuse(raw_server: RawFactory) -> None:
    close_now = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(OK)
        if len(raw.peers) == 1:
            await close_now.wait()
            writer.close()  # the upstream's keep-alive timeout, while the connection idles in the pool
            return
        await answer_each_request(raw, reader, writer)

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    await get(pool, "/")
    assert pool.idle == 1

    close_now.set()
    await until(lambda: pool.idle == 0)
    response, body = await get(pool, "/")

    assert (response.status, body) == (200, b"ok")
    assert len(raw.peers) == 2
    await pool.close()


async def test_a_pooled_connection_found_closed_before_writing_is_replaced_transparently(
    raw_server: RawFactory,
) -> None:
    raw = await raw_server(lambda reader, writer: answer_each_request(raw, reader, writer))
    pool = Pool(raw.url)
    await get(pool, "/")
    pool._idle[-1].transport.abort()  # closed, its connection_lost not delivered yet: still pooled

    response, body = await get(pool, "/")

    assert (response.status, body) == (200, b"ok")
    assert len(raw.peers) == 2
    assert len(raw.heads) == 2  # nothing of the request went out on the dead connection
    await pool.close()


async def test_a_half_read_answer_closes_its_connection(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(raw.peers) == 1:
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")  # and the rest later
        await answer_each_request(raw, reader, writer)

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    response = await pool.request("GET", "/", [], **TIMEOUTS)
    assert await anext(response.chunks()) == b"half"

    response.release()

    assert pool.idle == 0
    await until(lambda: raw.closed == 1)
    after, body = await get(pool, "/")
    assert (after.status, body) == (200, b"ok")
    await pool.close()


async def test_an_answer_that_arrived_whole_is_reusable_even_if_the_caller_read_none_of_it(
    peer_url: str,
) -> None:
    pool = Pool(peer_url)
    response = await pool.request("GET", "/echo", [], **TIMEOUTS)
    await until(lambda: response._conn is not None and response._conn.buffered == 5)  # all of it arrived

    response.release()

    after, _ = await get(pool, "/echo")
    assert peer(after) == peer(response)
    await pool.close()


async def test_the_context_manager_releases_on_exit_and_closes_on_an_exception(peer_url: str) -> None:
    pool = Pool(peer_url)
    async with await pool.request("GET", "/echo", [], **TIMEOUTS) as response:
        await response.read(100)
    assert pool.idle == 1

    async def fail_while_reading() -> None:
        async with await pool.request("GET", "/echo", [], **TIMEOUTS) as response:
            await response.read(100)
            raise LookupError

    with pytest.raises(LookupError):
        await fail_while_reading()
    assert pool.idle == 0
    await pool.close()


async def test_idle_connections_are_closed_after_the_idle_timeout(raw_server: RawFactory) -> None:
    raw = await raw_server(lambda reader, writer: answer_each_request(raw, reader, writer))
    pool = Pool(raw.url, idle_timeout_s=0.05)
    await get(pool, "/")

    await until(lambda: raw.closed == 1)

    assert pool.idle == 0
    await pool.close()


async def test_at_most_max_idle_connections_wait_in_the_pool(peer_url: str) -> None:
    pool = Pool(peer_url, max_idle=2)

    await asyncio.gather(*(get(pool) for _ in range(4)))

    assert pool.idle == 2
    await pool.close()


async def test_close_closes_idle_connections_and_in_flight_ones_when_released(raw_server: RawFactory) -> None:
    raw = await raw_server(lambda reader, writer: answer_each_request(raw, reader, writer))
    pool = Pool(raw.url)
    await asyncio.gather(get(pool, "/"), get(pool, "/"))
    in_flight = await pool.request("GET", "/", [], **TIMEOUTS)

    await pool.close()
    await pool.close()

    assert pool.idle == 0
    await until(lambda: raw.closed == 1)
    assert await in_flight.read(10) == b"ok"  # the exchange in flight keeps its connection
    in_flight.release()
    await until(lambda: raw.closed == 2)
    with pytest.raises(RuntimeError, match="closed"):
        await pool.request("GET", "/", [], **TIMEOUTS)
