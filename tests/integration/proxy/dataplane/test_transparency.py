"""Forwarding is transparent: what the client sends is what the upstream gets, and back, item by item."""

from __future__ import annotations

import asyncio
import gc
import gzip
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from tests.integration.proxy.conftest import (
    WAIT_S,
    Proxy,
    ProxyFactory,
    Recorder,
    closed_port,
    config_dict,
    headers_named,
    json_body,
    raw_request,
    url_of,
)


async def _proxy(
    make_proxy: ProxyFactory, upstreams: Any, **kwargs: Any
) -> tuple[Proxy, Recorder, TestServer]:
    server, recorder = upstreams["legacy"]
    proxy = await make_proxy(config_dict({"legacy": url_of(server)}, **kwargs))
    return proxy, recorder, server


async def test_method_raw_path_and_query_reach_the_upstream_byte_for_byte(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    target = b"/api/x/%C3%A9?b=2&a=1&a=%2F+x&empty=&flag"
    head, _ = await raw_request(
        proxy.port, b"PATCH " + target + b" HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200")
    assert recorder.seen[-1]["method"] == "PATCH"
    assert recorder.seen[-1]["raw_path"] == target.decode()


async def test_the_path_is_forwarded_in_the_normalized_form_it_was_matched_in(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    head, _ = await raw_request(
        proxy.port, b"GET /api//a/./b/../c?q=%2e%2e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200")
    assert recorder.seen[-1]["raw_path"] == "/api/a/c?q=%2e%2e"


async def test_an_encoded_slash_in_the_path_is_refused_with_400_and_never_forwarded(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    response = await proxy.client.get(
        "/api/images/..%2Fadmin", headers={"X-Request-ID": "req-1"}, allow_redirects=False
    )
    body = await response.json()
    assert response.status == 400
    assert body["error"]["code"] == "invalid_path"
    assert body["error"]["request_id"] == "req-1"
    assert recorder.seen == []


async def test_repeated_headers_arrive_in_order(make_proxy: ProxyFactory, upstreams: Any) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    await proxy.client.get("/x", headers=[("X-Multi", "one"), ("X-Other", "o"), ("X-Multi", "two")])
    assert headers_named(recorder.seen[-1], "X-Multi") == ["one", "two"]
    assert headers_named(recorder.seen[-1], "X-Other") == ["o"]


async def test_hop_by_hop_headers_and_those_named_in_connection_are_dropped(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    request = (
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close, X-Hop-Secret\r\nKeep-Alive: timeout=5\r\n"
        b"TE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n"
        b"Proxy-Connection: keep-alive\r\nX-Hop-Secret: 1\r\nX-End-To-End: kept\r\n\r\n"
    )
    head, _ = await raw_request(proxy.port, request)
    assert head.startswith(b"HTTP/1.1 200")
    names = {k.lower() for k, _ in recorder.seen[-1]["headers"]}
    for dropped in ("keep-alive", "te", "trailer", "proxy-authorization", "proxy-connection", "x-hop-secret"):
        assert dropped not in names
    assert headers_named(recorder.seen[-1], "X-End-To-End") == ["kept"]
    assert b"proxy-connection" not in head.lower()


async def test_forwarding_headers_are_set_and_the_peer_is_appended_to_x_forwarded_for(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, server = await _proxy(make_proxy, upstreams)
    await proxy.client.get("/x", headers={"X-Forwarded-For": "203.0.113.9", "Host": "shop.example"})
    seen = recorder.seen[-1]
    assert headers_named(seen, "X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert headers_named(seen, "X-Forwarded-Proto") == ["http"]
    assert headers_named(seen, "X-Forwarded-Host") == ["shop.example"]
    assert headers_named(seen, "Host") == [f"127.0.0.1:{server.port}"]

    await proxy.client.get("/x")
    assert headers_named(recorder.seen[-1], "X-Forwarded-For") == ["127.0.0.1"]


async def test_the_proxy_adds_no_client_library_headers_of_its_own(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    head, _ = await raw_request(proxy.port, b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    names = {k.lower() for k, _ in recorder.seen[-1]["headers"]}
    assert not names & {"accept-encoding", "user-agent", "accept", "cookie"}


async def test_a_request_id_is_kept_when_sent_and_generated_when_not_and_always_returned(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    response = await proxy.client.get("/x", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    assert headers_named(recorder.seen[-1], "X-Request-ID") == ["abc-123"]

    response = await proxy.client.get("/x")
    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert headers_named(recorder.seen[-1], "X-Request-ID") == [generated]


async def test_a_download_is_streamed_not_buffered(make_proxy: ProxyFactory, upstreams: Any) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    response = await proxy.client.get("/stream")
    # The upstream holds back its second chunk until we have the first: a buffering proxy deadlocks here.
    first = await asyncio.wait_for(response.content.readexactly(len(b"first-chunk")), WAIT_S)
    assert first == b"first-chunk"
    recorder.release.set()
    assert await asyncio.wait_for(response.read(), WAIT_S) == b"second-chunk"
    assert response.headers["Transfer-Encoding"] == "chunked"


async def test_an_upload_on_a_streaming_route_is_streamed_not_buffered(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    streamed = {"name": "uploads", "match": {"path_prefix": "/upload"}, "primary": "legacy",
                "request_body": "stream"}  # fmt: skip
    proxy, recorder, _ = await _proxy(make_proxy, upstreams, routes=[streamed])

    async def body() -> AsyncIterator[bytes]:
        yield b"first-part"
        # The upstream must see the first part while the client still holds the rest back.
        await asyncio.wait_for(recorder.first_chunk_seen.wait(), WAIT_S)
        yield b"-and-the-rest"

    response = await proxy.client.post("/upload", data=body())
    assert await response.json() == {"first": "first-part", "rest": "-and-the-rest"}


async def test_repeated_set_cookie_headers_all_reach_the_client(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    response = await proxy.client.get("/cookies")
    assert response.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]


async def test_a_compressed_body_passes_through_byte_identical(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _recorder, _ = await _proxy(make_proxy, upstreams)
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        url = f"http://127.0.0.1:{proxy.port}/gzip"
        async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
            body = await response.read()
    assert response.headers["Content-Encoding"] == "gzip"
    assert body == gzip.compress(b"hello " * 1000, mtime=0)
    assert int(response.headers["Content-Length"]) == len(body)


async def test_head_keeps_the_content_length_and_sends_no_body(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    request = b"HEAD /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head, body = await raw_request(proxy.port, request)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"\r\nContent-Length: 1234" in head
    assert body == b""


async def test_204_and_304_pass_through_without_a_body(make_proxy: ProxyFactory, upstreams: Any) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    response = await proxy.client.get("/status/204")
    assert (response.status, await response.read()) == (204, b"")
    response = await proxy.client.get("/status/304", headers={"If-None-Match": '"v1"'})
    assert (response.status, await response.read()) == (304, b"")
    assert response.headers["ETag"] == '"v1"'


async def test_a_redirect_is_passed_to_the_client_not_followed(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    response = await proxy.client.get("/status/302", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/elsewhere"
    assert recorder.seen == []  # /elsewhere was never requested by the proxy


async def test_a_websocket_upgrade_passes_through_with_messages_and_close_code(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    async with proxy.client.ws_connect("/ws", protocols=("chat",)) as ws:
        assert ws.protocol == "chat"
        await ws.send_str("hello")
        assert (await ws.receive(timeout=WAIT_S)).data == "legacy:hello"
        await ws.send_bytes(b"\x01\x02\x03")
        assert (await ws.receive(timeout=WAIT_S)).data == b"\x03\x02\x01"
        await ws.send_str("bye")
        message = await ws.receive(timeout=WAIT_S)
        assert message.type is WSMsgType.CLOSE
        assert message.data == 4001
        assert message.extra == "see you"


async def test_a_websocket_relay_survives_a_garbage_collection(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    """After the 101 the socket belongs to the relay; the task running it must be held by the server,
    or the collector may destroy it mid-conversation (seen under load as a connection closed at once)."""
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    async with proxy.client.ws_connect("/ws") as ws:
        await asyncio.sleep(0)  # the relay is in place and waiting on both sockets
        gc.collect()
        await ws.send_str("still there")
        assert (await ws.receive(timeout=WAIT_S)).data == "legacy:still there"


async def test_a_client_that_disconnects_cancels_the_upstream_request(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(recorder.entered.wait(), WAIT_S)
    writer.close()
    await asyncio.wait_for(recorder.cancelled.wait(), WAIT_S)
    assert not recorder.release.is_set()  # nothing but the disconnect ended the upstream handler
    del reader


async def test_a_body_over_the_limit_is_refused_with_413_up_front(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams, max_body_bytes=1000)
    response = await proxy.client.post("/x", data=b"x" * 1001)
    body = await response.json()
    assert response.status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert recorder.seen == []
    response = await proxy.client.post("/x", data=b"x" * 1000)
    assert response.status == 200
    assert recorder.seen[-1]["body_len"] == 1000


async def test_a_chunked_upload_over_the_limit_is_refused_with_413(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams, max_body_bytes=1000)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 400

    response = await proxy.client.post("/x", data=body())
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_a_post_without_body_is_forwarded_as_such(make_proxy: ProxyFactory, upstreams: Any) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    head, body = await raw_request(
        proxy.port, b"DELETE /things/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200")
    assert json_body(body)["method"] == "DELETE"
    assert recorder.seen[-1]["body_len"] == 0


async def test_a_client_that_leaves_mid_download_cancels_the_upstream_and_counts_as_499(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /idle-stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(reader.readuntil(b"first-chunk"), WAIT_S)
    writer.close()
    await asyncio.wait_for(recorder.cancelled.wait(), WAIT_S)

    async def counted() -> bool:
        labels = {"route": "default", "upstream": "legacy", "role": "default", "method": "GET", "code": "499"}
        return proxy.registry.get_sample_value("strangler_requests_total", labels) == 1

    for _ in range(int(WAIT_S / 0.02)):
        if await counted():
            break
        await asyncio.sleep(0.02)
    assert await counted()
    assert proxy.registry.get_sample_value(
        "strangler_upstream_errors_total", {"route": "default", "upstream": "legacy", "kind": "reset"}
    ) is None


async def test_forwarding_headers_from_a_trusted_proxy_are_kept(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams, trusted=["127.0.0.1/32"])
    sent = {
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "X-Forwarded-For": "198.51.100.7"
    }  # fmt: skip
    await proxy.client.get("/x", headers=sent)
    seen = recorder.seen[-1]
    assert headers_named(seen, "X-Forwarded-Proto") == ["https"]
    assert headers_named(seen, "X-Forwarded-Host") == ["shop.example"]
    assert headers_named(seen, "X-Forwarded-For") == ["198.51.100.7, 127.0.0.1"]


async def test_forwarding_headers_from_an_untrusted_client_are_replaced(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    await proxy.client.get("/x", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
    seen = recorder.seen[-1]
    assert headers_named(seen, "X-Forwarded-Proto") == ["http"]
    assert headers_named(seen, "X-Forwarded-Host") != ["evil.example"]


async def test_a_refused_websocket_upgrade_keeps_the_upstreams_error_status(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await proxy.client.ws_connect("/status/404")
    assert refused.value.status == 404


async def test_an_upgrade_answered_without_switching_protocols_is_a_502(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, _, _ = await _proxy(make_proxy, upstreams)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await proxy.client.ws_connect("/cookies")  # a plain HTTP route upstream answers 200
    assert refused.value.status == 502
    labels = {"route": "default", "upstream": "legacy", "kind": "protocol"}
    errors = proxy.sample("strangler_upstream_errors_total", **labels)
    assert errors == 1


async def test_a_websocket_to_an_unreachable_upstream_is_a_502(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(config_dict({"legacy": f"http://127.0.0.1:{closed_port()}"}))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await proxy.client.ws_connect("/ws")
    assert refused.value.status == 502


async def test_a_close_code_from_the_client_reaches_the_upstream(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy, recorder, _ = await _proxy(make_proxy, upstreams)
    ws = await proxy.client.ws_connect("/ws")
    await ws.send_str("ping")
    assert (await ws.receive(timeout=WAIT_S)).data == "legacy:ping"
    await ws.close(code=4002, message=b"done here")
    await asyncio.wait_for(recorder.ws_closed.wait(), WAIT_S)
    assert recorder.ws_close_codes == [4002]
    # bytes are relayed after the 101: the client gets the upstream's own answer to its close frame
    # (aiohttp's server answers 1000), not one the proxy made up
    assert ws.close_code == 1000
