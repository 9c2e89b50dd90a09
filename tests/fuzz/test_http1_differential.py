"""The new public listener (proxy.dataplane.http1) fuzzed alone and against today's: the same raw requests
to both, answer by answer.

Today's listener is aiohttp's server as the proxy runs it (FrontDoorRunner: its parser on the limits'
bounds, JSON refusals, 505/405), with the checks today's handler makes before routing (the live limits,
`Expect`, the body limit) and a trivial answer; the new one is Http1Server with the same trivial
handler. Both run in one thread's event loop (uvloop), on the same limits. For every input the new server
must answer like the old fuzz suite demands (a well-formed HTTP/1.x answer or a close; never a 500, never
a trace), and the two must agree on accept (2xx) versus refuse; every disagreement must be one of
ALLOWED below, each with its reason. Bounded like the other fuzz tests (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvloop
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.resilience import Limits
from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge
from proxy.dataplane.http1 import BodyMalformed, Http1Server, Request, Responder
from tests.fuzz.aiohttp_front_door import FrontDoorRunner
from tests.fuzz.aiohttp_refusals import request_refusal
from tests.fuzz.conftest import FUZZ
from tests.fuzz.http1_allowed import ALLOWED, Allowed, Answer, matching
from tests.fuzz.test_http_fuzz import bodies, check, header_lines, targets, tokens, versions

LIMITS = Limits(
    client_read_timeout_s=0.3, client_body_timeout_s=1.0, max_url_bytes=2048, max_header_bytes=4096,
    max_body_bytes=4096,
)  # fmt: skip
EXCHANGE_S = 2.0


async def new_handler(request: Request, responder: Responder) -> None:
    try:
        await request.content.read()
    except BodyTooLarge:
        await responder.send(413, [], b"too large")
        return
    except BodyReadTimeout:
        await responder.send(408, [], b"too slow")
        return
    except BodyMalformed:
        await responder.send(400, [], b"bad body")
        return
    await responder.send(200, [("Content-Type", "text/plain")], b"ok")


async def old_handler(request: web.Request) -> web.StreamResponse:
    refused = request_refusal(request.raw_path, request.raw_headers, LIMITS)  # the handler's live check
    if refused is not None:
        return web.Response(status=refused[0], text=refused[1])
    if request.content_length is not None and request.content_length > LIMITS.max_body_bytes:
        return web.Response(status=413, text="too large")
    try:
        await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, text="too large")
    return web.Response(text="ok")


async def old_expect(request: web.Request) -> web.StreamResponse | None:
    """The rules of the old proxy/dataplane/expect.py, without its config store and metrics."""
    if request.version != (1, 1):
        return None
    if request.headers.get("Expect", "").lower() != "100-continue":
        return web.Response(status=417, text="expectation failed")
    if request.content_length is not None and request.content_length > LIMITS.max_body_bytes:
        return web.Response(status=413, text="too large")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0
    return None


@dataclass
class Pair:
    new: int
    old: int


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with running_pair() as running:
        yield running


@contextmanager
def running_pair() -> Iterator[Pair]:
    """Both servers in one thread's uvloop, on LIMITS, until the context ends."""
    ready: list[Pair] = []
    started = threading.Event()
    stop: list[Callable[[], None]] = []

    async def main() -> None:
        server = Http1Server(new_handler, limits=lambda: LIMITS, max_connections=lambda: 1000)
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(server.protocol_factory, "127.0.0.1", 0)
        app = web.Application(client_max_size=LIMITS.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", old_handler, expect_handler=old_expect)
        runner = FrontDoorRunner(app, limits=lambda: LIMITS, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.append(Pair(listener.sockets[0].getsockname()[1], runner.addresses[0][1]))
        done = asyncio.Event()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        started.set()
        await done.wait()
        listener.close()
        await server.shutdown(0.1)
        await runner.cleanup()

    thread = threading.Thread(target=uvloop.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10.0), "the servers did not start"
    yield ready[0]
    stop[0]()
    thread.join(10.0)


def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the server closes, answers completely, or EXCHANGE_S pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=EXCHANGE_S) as sock:
        try:
            sock.sendall(data)
        except OSError:
            return b""
        received, deadline = b"", time.monotonic() + EXCHANGE_S
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            received += chunk
            if complete(received):
                break
        return received


def complete(received: bytes) -> bool:
    """A final answer with its whole body is in (1xx answers before it skipped)."""
    while received.startswith(b"HTTP/1.1 1"):
        _, sep, received = received.partition(b"\r\n\r\n")
        if not sep:
            return False
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    lower = head.lower()
    if b"content-length:" in lower:
        return len(body) >= int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
    return b"transfer-encoding: chunked" in lower and body.endswith(b"0\r\n\r\n")


def answer_of(raw: bytes) -> Answer:
    """The final status, or 0 when the server closed without one."""
    while raw.startswith(b"HTTP/1.1 1") and not raw.startswith(b"HTTP/1.1 1 "):
        raw = raw.partition(b"\r\n\r\n")[2]
    if not raw.startswith(b"HTTP/1."):
        return Answer(0)
    return Answer(int(raw.split(b" ", 2)[1]))


def answers(pair: Pair, data: bytes) -> tuple[bytes, bytes]:
    with ThreadPoolExecutor(2) as pool:
        new_raw, old_raw = pool.map(exchange, (pair.new, pair.old), (data, data))
    return new_raw, old_raw


def compare(pair: Pair, data: bytes) -> None:
    new_raw, old_raw = answers(pair, data)
    check(new_raw)  # the old fuzz suite's rules, for the new server
    new, old = answer_of(new_raw), answer_of(old_raw)
    if new.accepted == old.accepted:
        return
    allowed = matching(data, new, old)
    assert allowed is not None, f"new {new.status}, old {old.status}, unexplained, for {data!r}"
    if allowed.reduce is not None:
        reduced = allowed.reduce(data)
        assert reduced is not None, f"{allowed.name}: nothing to blame in {data!r}"
        compare(pair, reduced)  # without the blamed part, they agree (or differ for a listed reason)


@FUZZ
@given(method=tokens, target=targets, version=versions, headers=st.lists(header_lines, max_size=6),
       body=bodies)  # fmt: skip
def test_the_new_server_and_todays_agree_on_malformed_requests_or_the_difference_is_listed(
    pair: Pair, method: bytes, target: bytes, version: bytes, headers: list[bytes], body: bytes
) -> None:
    data = method + b" " + target + b" " + version + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
    compare(pair, data + b"\r\n" + body)


# Mostly well-formed requests with a few hostile lines: where the two parsers' edges are.
near_lines = header_lines | st.sampled_from([
    b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: 05", b"Content-Length:5",
    b"Content-Length: 5 ", b"Host: second.test", b"Content-Type: a", b"content-type: b", b"Expect: teapot",
    b"Expect: 100-Continue", b"Connection: keep-alive", b"Connection: Upgrade", b"Upgrade: h2c",
    b"Upgrade: websocket", b"X-Tab: a\tb", b"X-Obs-Text: \x80\xff", b"X-Trailing: v \t", b"X-Empty:",
    b"X-Long: " + b"a" * 5000, b"X-Del: a\x7fb", b"Sec-WebSocket-Key1: x", b"User-Agent: a",
    b"User-Agent: b", b"TE: trailers", b"Transfer-Encoding: identity", b"Transfer-Encoding: CHUNKED",
    b"X-Bare-Cr: a\rb", b": no-name", b"X\x00Y: z", b"X-\xff: z", b"Max-Forwards: 1",
])  # fmt: skip
near_methods = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"PURGE"])
near_versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])


endings = st.sampled_from([b"\r\n"] * 6 + [b"\n"])


@FUZZ
@given(method=near_methods, target=targets, version=near_versions, host=st.booleans(),
       headers=st.lists(near_lines, max_size=4), body=bodies, eol=endings)  # fmt: skip
def test_the_new_server_and_todays_agree_on_near_valid_requests_or_the_difference_is_listed(
    pair: Pair,
    method: bytes,
    target: bytes,
    version: bytes,
    host: bool,
    headers: list[bytes],
    body: bytes,
    eol: bytes,
) -> None:
    lines = [method + b" " + target + b" " + version, *([b"Host: example.test"] if host else []), *headers]
    compare(pair, b"".join(line + eol for line in lines) + eol + body)


@FUZZ
@given(data=st.binary(max_size=200))
def test_the_new_server_and_todays_agree_on_random_bytes_or_the_difference_is_listed(
    pair: Pair, data: bytes
) -> None:
    compare(pair, data)


def test_every_allowed_difference_says_why() -> None:
    for allowed in ALLOWED:
        assert len(allowed.reason) > 80, allowed.name


@pytest.mark.parametrize("allowed", ALLOWED, ids=lambda allowed: allowed.name)
def test_every_allowed_difference_still_exists(pair: Pair, allowed: Allowed) -> None:
    """An entry whose difference has gone (either side changed) must leave the list."""
    new_raw, old_raw = answers(pair, allowed.example)
    new, old = answer_of(new_raw), answer_of(old_raw)
    assert new.accepted != old.accepted, f"{allowed.name}: both answer {new.status}/{old.status} now"
    assert matching(allowed.example, new, old) is allowed


def test_the_new_server_still_serves_after_the_fuzzing(pair: Pair) -> None:
    answer = exchange(pair.new, b"GET /api/catalog HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
