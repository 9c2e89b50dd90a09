"""https upstreams: the certificate and the host name are always verified, against the pool's CA bundle
(a trustme CA here), and the URL's host goes out as SNI."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from proxy.client import UpstreamError
from proxy.upstream import Pool
from tests.unit.proxy.upstream.conftest import WAIT_S, ServerFactory, Tls

TIMEOUTS = {"connect_timeout_s": WAIT_S, "read_timeout_s": WAIT_S}


def hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.StreamResponse:
        return web.Response(body=f"hello {request.host}".encode())

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/echo", echo)
    return app


async def tls_server(aiohttp_server: ServerFactory, context: ssl.SSLContext) -> int:
    server = await aiohttp_server(hello_app(), ssl=context, host="127.0.0.1")
    return int(server.port)


async def test_a_certificate_from_the_ca_bundle_is_verified_and_the_url_host_is_the_sni(
    aiohttp_server: ServerFactory, tls: Tls
) -> None:
    context = tls.server_context("localhost")
    names: list[str | None] = []

    def remember(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember  # type: ignore[assignment]
    port = await tls_server(aiohttp_server, context)
    pool = Pool(f"https://localhost:{port}", ca_bundle=tls.ca_file)

    first = await pool.request("GET", "/", [], **TIMEOUTS)
    first_body = await first.read(100)
    first.release()
    second = await pool.request("GET", "/", [], **TIMEOUTS)

    assert (first.status, first_body) == (200, f"hello localhost:{port}".encode())
    assert await second.read(100) == first_body
    assert names == ["localhost"]  # one handshake: the second request reused the connection
    second.release()
    await pool.close()


async def test_request_bodies_go_out_over_tls(aiohttp_server: ServerFactory, tls: Tls) -> None:
    port = await tls_server(aiohttp_server, tls.server_context("localhost"))
    pool = Pool(f"https://localhost:{port}", ca_bundle=tls.ca_file)

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"streamed ", b"over ", b"tls"):
            yield part

    whole = await pool.request("POST", "/echo", [], b"bytes over tls", **TIMEOUTS)
    whole_body = await whole.read(100)
    whole.release()
    streamed = await pool.request("POST", "/echo", [], parts(), **TIMEOUTS)

    assert (whole_body, await streamed.read(100)) == (b"bytes over tls", b"streamed over tls")
    streamed.release()
    assert pool.idle == 1
    await pool.close()


async def test_a_certificate_the_pool_does_not_trust_is_refused_as_a_connect_failure(
    aiohttp_server: ServerFactory, tls: Tls
) -> None:
    port = await tls_server(aiohttp_server, tls.server_context("localhost"))
    pool = Pool(f"https://localhost:{port}")  # the system's CAs only

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], **TIMEOUTS)

    error = raised.value
    assert (error.kind, error.connection_failure, error.timeout) == ("connect", True, False)
    assert "certificate verification failed" in str(error)
    await pool.close()


async def test_a_certificate_for_another_host_is_refused(aiohttp_server: ServerFactory, tls: Tls) -> None:
    port = await tls_server(aiohttp_server, tls.server_context("upstream.example"))
    pool = Pool(f"https://localhost:{port}", ca_bundle=tls.ca_file)

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], **TIMEOUTS)

    assert (raised.value.kind, raised.value.connection_failure) == ("connect", True)
    assert "certificate verification failed" in str(raised.value)
    assert "localhost" in str(raised.value)
    await pool.close()


def test_a_ca_bundle_on_a_plain_http_upstream_is_refused(tls: Tls) -> None:
    with pytest.raises(ValueError, match="https"):
        Pool("http://localhost:8081", ca_bundle=tls.ca_file)
