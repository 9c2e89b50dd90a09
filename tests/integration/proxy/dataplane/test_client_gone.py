"""A client that goes away while its answer is being written, before the loop has cancelled its
handler (the upstream's answer and the client's close land in one loop iteration): the request is
recorded as 499, like a client gone while waiting, never as the proxy's own 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.dataplane.http1 import EMPTY, ClientGone, Http1Connection, Request, Responder
from proxy.dataplane.keys import HANDLER
from tests.integration.proxy.conftest import ProxyFactory, config_dict, url_of


class GoneConnection:
    """The parts of Http1Connection a Responder uses, for a client whose socket has just closed."""

    write_paused = False

    def __init__(self) -> None:
        self.ended: list[bool] = []

    def may_keep_alive(self, _: Request) -> bool:
        return True

    def write(self, _: bytes) -> None:
        raise ClientGone

    def write_chunk(self, _: bytes) -> None:
        raise ClientGone

    async def drain(self) -> None:
        raise ClientGone

    def response_ended(self, _: Request, *, keep: bool, complete: bool, reset: bool = False) -> None:
        self.ended.append(complete)


async def _answer(_: web.Request) -> web.Response:
    return web.json_response({"served_by": "legacy"})


async def test_a_client_gone_as_its_answer_is_written_is_a_499_not_a_500(
    make_proxy: ProxyFactory, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _answer)
    upstream = await aiohttp_server(app)
    proxy = await make_proxy(config_dict({"legacy": url_of(upstream)}))
    request = Request("GET", "/api/orders", "1.1", [(b"Host", b"shop")], ("127.0.0.1", 50000),
                      keep_alive=True, content_length=None, chunked=False, upgrade=False,
                      expect_continue=False, content=EMPTY)  # fmt: skip
    gone = GoneConnection()

    await proxy.app[HANDLER].handle(request, Responder(cast(Http1Connection, gone), request))

    labels = {"route": "default", "upstream": "legacy", "role": "default", "method": "GET"}
    assert proxy.sample("strangler_requests_total", **labels, code="499") == 1
    assert proxy.sample("strangler_requests_total", **labels, code="500") == 0
    assert gone.ended == []  # nothing more was tried on the closed connection (no error answer)
