"""What tests/fuzz/aiohttp_front_door.py takes from aiohttp beyond its public API, one assumption per check.

FrontDoorRunner/FrontDoorServer/FrontDoorProtocol subclass aiohttp's AppRunner, Server and RequestHandler
and read their private state. An aiohttp upgrade that changes any of it fails here, with a message naming
what changed, instead of the front door quietly losing a limit. The protocol is driven in memory through a
fake transport: no socket, no network.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.config.resilience import Limits

LINE, FIELD, HEADERS = 100, 200, 3  # the parser bounds of the connections below


def changed(what: str, why: str) -> str:
    return (
        f"aiohttp {aiohttp.__version__} changed {what}; tests/fuzz/aiohttp_front_door.py relies on it "
        f"({why}). Adapt tests/fuzz/aiohttp_front_door.py to the new aiohttp, or keep the version "
        "requirements.lock pins."
    )


def internal(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(changed(f"where {module}.{name} lives", "aiohttp_front_door.py imports it from there"))


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def ok(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(text="ok")


def connection(handler: Callable[[web.BaseRequest], Any] = ok) -> Any:
    """A RequestHandler subclass recording handle_error's arguments, built as FrontDoorServer builds its
    FrontDoorProtocol: from the Server's _loop and _kwargs."""
    request_handler = internal("aiohttp.web_protocol", "RequestHandler")

    class Recorder(request_handler):  # type: ignore[misc, valid-type]  # a class found at run time
        errors: list[tuple[int, BaseException | None, int]]

        def handle_error(
            self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
            message: str | None = None,
        ) -> web.StreamResponse:  # fmt: skip
            self.errors.append((status, exc, request.writer.output_size))
            response = web.Response(text="answered by handle_error")
            response.force_close()
            return response

    server = web.Server(handler, max_line_size=LINE, max_field_size=FIELD, max_headers=HEADERS)
    protocol = Recorder(server, loop=server._loop, **server._kwargs)
    protocol.errors = []
    return protocol


@asynccontextmanager
async def connected(protocol: Any) -> AsyncIterator[FakeTransport]:
    transport = FakeTransport()
    protocol.connection_made(transport)
    task = protocol._task_handler
    try:
        yield transport
    finally:
        protocol.connection_lost(None)
        if task is not None:
            await asyncio.wait([task], timeout=5)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(what)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("aiohttp.web_protocol", "RequestHandler"),
        ("aiohttp.web_request", "BaseRequest"),
        ("aiohttp.http_exceptions", "BadHttpMethod"),
        ("aiohttp.http_exceptions", "HttpProcessingError"),
        ("aiohttp.http_exceptions", "LineTooLong"),
    ],
)
def test_every_name_the_front_door_imports_from_an_aiohttp_module_is_still_there(
    module: str, name: str
) -> None:
    assert inspect.isclass(internal(module, name))


READ = [  # (owner, attribute, what the front door does with it)
    ("AppRunner", "_make_server", "FrontDoorRunner overrides it to build a FrontDoorServer"),
    ("Server", "_loop", "FrontDoorServer.__call__ passes it to each connection"),
    ("Server", "_kwargs", "FrontDoorServer.__call__ passes them (the parser bounds) to each connection"),
    ("Server", "request_factory", "it is wrapped to refuse other HTTP versions"),
    ("Server", "request_handler", "it is wrapped to refuse other HTTP versions and CONNECT"),
    ("RequestHandler", "_request_count", "data_received compares it to see a whole head arrive"),
    ("RequestHandler", "_messages", "the parsed heads not yet handled, with their body readers"),
    ("RequestHandler", "_current_request", "the request being answered, if any"),
    ("RequestHandler", "_loop", "the head and body timers are armed on it"),
    ("RequestHandler", "transport", "refusals are written to it"),
    ("RequestHandler", "_lingering_time", "close_after_response zeroes it: an Expect refusal closes at once"),
]


@pytest.mark.parametrize(("owner", "attribute", "why"), READ, ids=[f"{o}.{a}" for o, a, _ in READ])
async def test_every_attribute_the_front_door_reads_or_overrides_is_still_there(
    owner: str, attribute: str, why: str
) -> None:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    try:
        assert runner.server is not None
        protocol = runner.server()
        async with connected(protocol):
            instance = {"AppRunner": runner, "Server": runner.server, "RequestHandler": protocol}[owner]
            assert hasattr(instance, attribute), changed(f"{owner}.{attribute}", why)
    finally:
        await runner.cleanup()


async def test_the_runner_builds_its_server_in_make_server_and_the_server_builds_each_connection() -> None:
    from tests.fuzz.aiohttp_front_door import (
        FrontDoorProtocol,
        FrontDoorRunner,
        FrontDoorServer,
        parser_bounds,
    )

    limits = Limits()
    runner = FrontDoorRunner(web.Application(), limits=lambda: limits)
    try:
        await runner.setup()
    except TypeError as exc:
        pytest.fail(changed("web.Server's instance layout", f"FrontDoorRunner swaps its class: {exc}"))
    try:
        server = runner.server
        why = "FrontDoorRunner overrides it to make its server a FrontDoorServer"
        assert isinstance(server, FrontDoorServer), changed("AppRunner._make_server()", why)
        why = "each connection runs on it"
        assert server._loop is asyncio.get_running_loop(), changed("web.Server._loop", why)
        bounds = parser_bounds(limits)
        why = "AppRunner's keyword arguments, the parser bounds, reach each connection through it"
        assert {key: server._kwargs.get(key) for key in bounds} == bounds, changed("web.Server._kwargs", why)
        protocol = server()
        why = "it builds each connection"
        assert isinstance(protocol, FrontDoorProtocol), changed("web.Server.__call__", why)
        why = "max_line_size, max_field_size and max_headers bound the parser"
        built = {key: getattr(protocol, key) for key in bounds}
        assert built == bounds, changed("RequestHandler's keyword arguments", why)
    finally:
        await runner.cleanup()


async def test_a_head_is_counted_and_queued_with_its_body_reader_when_its_last_byte_arrives() -> None:
    protocol = connection()
    async with connected(protocol) as transport:
        assert protocol.transport is transport, changed("RequestHandler.transport", "refusals go to it")
        assert protocol._loop is asyncio.get_running_loop(), changed("RequestHandler._loop", "timers use it")
        count = changed("RequestHandler._request_count", "data_received compares it to see a head arrive")
        queue = changed("RequestHandler._messages", "a deque of (message, body reader) not yet handled")
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: a\r\n")
        assert protocol._request_count == 0, count
        protocol.data_received(b"Content-Length: 4\r\n\r\nab")
        assert protocol._request_count == 1, count
        message, body = protocol._messages[-1]
        assert message.method == "POST", queue
        assert not body.is_eof(), queue
        protocol.data_received(b"cd")
        assert body.is_eof(), queue
        assert protocol._request_count == 1, count


async def test_the_current_request_is_set_while_its_handler_runs_and_cleared_after() -> None:
    during: list[bool] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        during.append(request.protocol._current_request is request)
        return web.Response(text="ok")

    protocol = connection(handler)
    async with connected(protocol) as transport:
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await until(lambda: transport.written.endswith(b"ok"), "the handler never answered")
    why = "a head timeout must not write into a response on its way; a stalled body is failed through it"
    assert during == [True], changed("RequestHandler._current_request", why)
    assert protocol._current_request is None, changed("RequestHandler._current_request", why)


async def test_the_request_factory_and_handler_are_read_from_the_server_for_each_new_connection() -> None:
    server = web.Server(ok)
    why = "the front door wraps server.request_factory to refuse other HTTP versions"
    parameters = list(inspect.signature(server.request_factory).parameters)
    assert parameters == ["message", "payload", "protocol", "writer", "task"], changed(
        "web.Server.request_factory's signature", why
    )
    messages: list[Any] = []
    make_request = server.request_factory

    def factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
        messages.append(message)
        return make_request(message._replace(should_close=True), payload, protocol, writer, task)

    server.request_factory = factory
    protocol = server()
    async with connected(protocol) as transport:
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await until(lambda: transport.closed, "a request made with should_close=True kept its connection")
    versions = [message.version for message in messages]
    assert versions == [aiohttp.HttpVersion11], changed("web.Server.request_factory", why)
    assert transport.written.startswith(b"HTTP/1.1 200"), changed("RawRequestMessage._replace", why)


REFUSALS: list[tuple[str, bytes, str, str | int | None]] = [  # (id, request, exception, limit or message)
    ("long-request-line", b"GET /" + b"a" * LINE + b" HTTP/1.1\r\n\r\n", "LineTooLong", LINE),
    ("long-header-line", b"GET / HTTP/1.1\r\nX-A: " + b"b" * FIELD + b"\r\n\r\n", "LineTooLong", FIELD),
    ("too-many-headers", b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * (HEADERS + 1) + b"\r\n",
     "HttpProcessingError", "Too many headers"),
    ("cl-and-te", b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "HttpProcessingError", "Content-Length"),
    ("tls-on-plain-port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "BadHttpMethod", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_bytes", "kind", "detail"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
async def test_a_parser_refusal_is_counted_and_handed_to_handle_error_whose_answer_is_sent(
    request_bytes: bytes, kind: str, detail: str | int | None
) -> None:
    protocol = connection()
    async with connected(protocol) as transport:
        protocol.data_received(request_bytes)
        why = "a parser refusal must count as a head, or the head timer stays armed"
        assert protocol._request_count == 1, changed("RequestHandler._request_count", why)
        await until(lambda: transport.closed, "the refusal never closed the connection")
    why = "FrontDoorProtocol.handle_error words each refusal from the parser's exception"
    assert len(protocol.errors) == 1, changed("when RequestHandler.handle_error is called", why)
    status, exc, output_size = protocol.errors[0]
    assert status == 400, changed("the status handle_error gets for a parser refusal", why)
    assert isinstance(exc, internal("aiohttp.http_exceptions", kind)), changed(f"the parser's {kind}", why)
    if kind == "LineTooLong":
        why = "the limit it names tells a long request line (414) from a long header line (431)"
        assert exc.args[1] == detail, changed("LineTooLong.args[1]", why)
    elif isinstance(detail, str):
        assert detail in str(exc.message), changed("HttpProcessingError.message", why)
    assert output_size == 0, changed("request.writer.output_size", "it says whether an answer is on its way")
    assert transport.written.endswith(b"answered by handle_error"), changed("what handle_error returns", why)


async def test_force_close_closes_the_transport_at_once() -> None:
    protocol = connection()
    async with connected(protocol) as transport:
        protocol.force_close()
        why = "a refused connection is closed with it"
        assert transport.closed, changed("RequestHandler.force_close", why)
