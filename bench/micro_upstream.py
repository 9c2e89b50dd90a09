"""`python -m bench.micro_upstream`: a throwaway microbenchmark of proxy.upstream (issue 14), not part of
`make bench`.

1. The parts, in-process (timeit): rendering a request head; llhttp parsing one response with the
   connection's parser reused against a new parser per response.
2. Whole requests on loopback, sequential, keep-alive: proxy.upstream.Pool against aiohttp's
   ClientSession (set up as the proxy's upstream path was before proxy/upstream/). The upstream
   is a minimal uvloop Protocol in a child process, so the client's CPU time per request
   (process_time) is the client's own.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
import timeit
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import uvloop
from httptools import HttpResponseParser

from proxy.upstream import Pool
from proxy.upstream.connection import Connection
from proxy.upstream.state import HEAD
from proxy.upstream.wire import framing, render_head

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
    b"Date: Wed, 02 Dec 2026 00:00:00 GMT\r\nServer: upstream\r\nX-Request-ID: req-7\r\n\r\n"
    b'{"id": "img_1", "ok": true}'
)
HEADERS = [
    ("Accept", "application/json"), ("User-Agent", "bench/1.0"), ("Accept-Encoding", "gzip"),
    ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "front"),
    ("X-Request-ID", "req-7"), ("Cookie", "session=abc"),
]  # fmt: skip


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def parts(number: int) -> dict[str, float]:
    loop = asyncio.new_event_loop()
    conn = Connection(Pool("http://127.0.0.1:1"), "bench", loop)

    def render() -> bytes:
        return render_head(
            "GET", "/api/images/img_1?x=1", "upstream:8082", HEADERS, framing("GET", None, None)
        )

    def parse(fresh: bool) -> Callable[[], object]:
        def run() -> None:
            conn.phase, conn.headers, conn.reason, conn.no_body = HEAD, [], b"", False
            if fresh:
                conn.parser = HttpResponseParser(conn)
            conn.parser.feed_data(ANSWER)
            conn.buffer.clear()
            conn.buffered = 0

        return run

    results = {
        "render_head (8 headers)": _per_call_us(render, number),
        "parse, parser reused": _per_call_us(parse(False), number),
        "parse, new parser per response": _per_call_us(parse(True), number),
        "HttpResponseParser() alone": _per_call_us(lambda: HttpResponseParser(conn), number),
    }
    loop.close()
    return results


class _Upstream(asyncio.Protocol):
    """Answers every request head with ANSWER (no body expected: GETs only)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\r\n\r\n" in self.pending:
            _, _, self.pending = self.pending.partition(b"\r\n\r\n")
            self.transport.write(ANSWER)


def _serve(port: Any) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        await asyncio.Event().wait()

    uvloop.run(main())


async def _measure(
    label: str, one: Callable[[], Coroutine[Any, Any, bytes]], n: int
) -> tuple[str, float, float]:
    for _ in range(200):  # warm-up: connections open, caches hot
        await one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await one()
    return label, (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def round_trips(url: str, n: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    pool = Pool(url)
    session = aiohttp.ClientSession(  # as the proxy's upstream path was set up before proxy/upstream/
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30),
        auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
    )
    timeout = aiohttp.ClientTimeout(total=None, connect=7.0, sock_connect=2.0, sock_read=5.0)

    async def upstream_pool() -> bytes:
        async with await pool.request("GET", "/api/images/img_1", HEADERS, connect_timeout_s=2.0,
                                      read_timeout_s=5.0) as response:  # fmt: skip
            return await response.read(65536)

    async def aiohttp_session() -> bytes:
        async with session.get(url + "/api/images/img_1", headers=HEADERS, timeout=timeout) as response:
            return await response.read()

    results: dict[str, list[tuple[float, float]]] = {"proxy.upstream.Pool": [], "aiohttp ClientSession": []}
    for _ in range(rounds):  # interleaved, so a noisy neighbour hurts both alike
        for label, one in (
            ("proxy.upstream.Pool", upstream_pool),
            ("aiohttp ClientSession", aiohttp_session),
        ):
            _, cpu, wall = await _measure(label, one, n)
            results[label].append((cpu, wall))
    await pool.close()
    await session.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.micro_upstream", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=5000, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for label, us in parts(20_000).items():
        print(f"{label:34} {us:7.2f} µs")
    port = multiprocessing.Value("i", 0)
    child = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    child.start()
    try:
        while not port.value:
            time.sleep(0.01)
        results = uvloop.run(round_trips(f"http://127.0.0.1:{port.value}", args.requests, args.rounds))
    finally:
        child.terminate()
        child.join()
    for label, samples in results.items():
        cpu = statistics.median(c for c, _ in samples)
        wall = statistics.median(w for _, w in samples)
        print(f"{label:34} client CPU {cpu:7.1f} µs/request   wall {wall:7.1f} µs/request (median of rounds)")


if __name__ == "__main__":
    main()
