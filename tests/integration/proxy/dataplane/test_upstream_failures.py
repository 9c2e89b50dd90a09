"""An upstream that refuses, resets, stalls or goes idle never hangs the proxy: 502/504 or a cut stream."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.integration.proxy.conftest import WAIT_S, ProxyFactory, closed_port, config_dict, url_of


async def _error(response: aiohttp.ClientResponse) -> dict[str, str]:
    body = await response.json()
    return body["error"]  # type: ignore[no-any-return]


async def test_a_refused_connection_is_a_502_upstream_unreachable(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(config_dict({"legacy": f"http://127.0.0.1:{closed_port()}"}))
    response = await proxy.client.get("/x", headers={"X-Request-ID": "r-502"})
    error = await _error(response)
    assert response.status == 502
    assert error["code"] == "upstream_unreachable"
    assert error["request_id"] == "r-502"
    assert response.headers["X-Request-ID"] == "r-502"
    assert proxy.sample(
        "strangler_upstream_errors_total", route="default", upstream="legacy", kind="connect"
    ) == 1
    assert proxy.sample(
        "strangler_requests_total", route="default", upstream="legacy", role="default", method="GET",
        code="502",
    ) == 1  # fmt: skip


@pytest.fixture
async def resetting_upstream() -> AsyncIterator[str]:
    """A server that accepts a connection, reads the request and closes without answering."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_a_reset_connection_is_a_502(make_proxy: ProxyFactory, resetting_upstream: str) -> None:
    proxy = await make_proxy(config_dict({"legacy": resetting_upstream}))
    response = await proxy.client.post("/x", data=b"payload")
    assert response.status == 502
    assert (await _error(response))["code"] == "upstream_unreachable"
    assert proxy.sample(
        "strangler_upstream_errors_total", route="default", upstream="legacy", kind="reset"
    ) == 1


async def test_slow_response_headers_are_a_504_upstream_timeout(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    server, recorder = upstreams["legacy"]
    proxy = await make_proxy(config_dict({"legacy": url_of(server)}, timeout_s=0.2))
    response = await proxy.client.get("/hold", headers={"X-Request-ID": "r-504"})
    error = await _error(response)
    assert response.status == 504
    assert error == {
        "code": "upstream_timeout",
        "message": "upstream 'legacy' did not answer in time",
        "request_id": "r-504",
    }
    assert recorder.entered.is_set()
    assert proxy.sample(
        "strangler_upstream_errors_total", route="default", upstream="legacy", kind="timeout"
    ) == 1


async def test_an_idle_stream_times_out_and_the_client_sees_a_cut_body(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    server, _ = upstreams["legacy"]
    proxy = await make_proxy(config_dict({"legacy": url_of(server)}, timeout_s=0.2))
    response = await proxy.client.get("/idle-stream")
    assert response.status == 200  # the headers were already on their way
    assert await asyncio.wait_for(response.content.readexactly(11), WAIT_S) == b"first-chunk"
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(response.read(), WAIT_S)
    assert proxy.sample(
        "strangler_upstream_errors_total", route="default", upstream="legacy", kind="timeout"
    ) == 1


async def test_a_small_body_that_stalls_before_its_end_is_a_504(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    server, _ = upstreams["legacy"]
    proxy = await make_proxy(config_dict({"legacy": url_of(server)}, timeout_s=0.2))
    response = await proxy.client.get("/stalled-body")
    assert response.status == 504  # nothing was sent yet: the client gets a clean error, not a cut body
    assert (await _error(response))["code"] == "upstream_timeout"


async def test_a_long_stream_that_keeps_sending_does_not_time_out(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    server, _ = upstreams["legacy"]
    # 20 gaps of 0.05 s: the whole stream lasts well beyond the 0.5 s per-read timeout.
    proxy = await make_proxy(config_dict({"legacy": url_of(server)}, timeout_s=0.5))
    response = await proxy.client.get("/trickle?n=20&gap=0.05")
    body = await asyncio.wait_for(response.read(), WAIT_S * 2)
    assert body == b"".join(f"{i};".encode() for i in range(20))
    assert proxy.sample(
        "strangler_upstream_errors_total", route="default", upstream="legacy", kind="timeout"
    ) == 0


async def test_a_connect_that_cannot_complete_is_bounded_by_connect_timeout(make_proxy: ProxyFactory) -> None:
    # A listening socket with a full backlog that never accepts: the connect may hang; the proxy must not.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(0)
    port = blocker.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the backlog: Linux then drops further SYNs and the connect stalls
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        proxy = await make_proxy(config_dict({"legacy": f"http://127.0.0.1:{port}"}, connect_timeout_s=0.2))
        response = await asyncio.wait_for(proxy.client.get("/x"), WAIT_S)
        assert response.status == 504
        assert (await _error(response))["code"] == "upstream_timeout"
    finally:
        for filler in fillers:
            filler.close()
        blocker.close()
