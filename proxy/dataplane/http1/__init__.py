"""The public listener's HTTP/1.x server at the protocol level: asyncio.Protocol on llhttp (httptools).

Owns accepting client connections, parsing requests strictly, the limits and deadlines that act before
and around the handler, and writing responses with the framing and connection management the server
decides. Owns no routing, forwarding or upstream (the handler's), no metrics (events are reported
through `on_event`), and no listener (the caller's `loop.create_server`).

    server = Http1Server(handle, limits=lambda: store.current.table.limits, max_connections=cap,
                         on_event=count)
    listener = await loop.create_server(server.protocol_factory, host, port, reuse_port=...)
    ...
    listener.close()                  # stop accepting
    await server.shutdown(timeout_s)  # idle connections now, busy ones after their response
    # then the app's cleanup (upstream pools, shadow mirror...)

    async def handle(request: Request, responder: Responder) -> None: ...

`Request` (request.py): method, target (raw: path and query, never decoded), path, query, version
("1.0"/"1.1"), headers (CIMultiDict, latin-1), raw_headers (wire order), peer, peer_port, keep_alive,
content_length, chunked, body_exists, upgrade, expect_continue, content (body.py: read_chunk(),
iter_any(), read(), readany(), at_eof(), is_eof(), exception(), set_exception(); flow control towards
the client; `100 Continue` sent at the first read, never otherwise).

`Responder` (responder.py): send(status, headers, body) (one write), or start(status, headers,
reason=...), write(chunk) (waits for the client to read), end(); abort() (the client sees a cut); after
start(101, ...), detach() -> (transport, bytes already received): the server forgets the socket.
`started`, `finished`, `status`. The handler's Connection, Keep-Alive, Transfer-Encoding, TE, Trailer,
Upgrade (but on a 101) and Proxy-Connection headers are ignored; Content-Length is its framing.

What the server answers itself, in the proxy's JSON error shape, closing the connection after it (each
reported as `on_event(code)`): 400 bad_request / conflicting_framing (whatever strict llhttp refuses:
CL+TE, two Content-Length, obs-fold, control characters, bare LF, bad chunk sizes...; a missing or
repeated Host; a repeated singleton header; a draft-76 WebSocket handshake), 400 invalid_path (any
target but a path: absolute-form, `*`), 405 (CONNECT), 408 (a head not complete within
client_read_timeout_s), 413 (a declared body over max_body_bytes, before it is read or invited), 414,
417, 431 (live limits), 505 (a version other than 1.0 and 1.1), 503 too_many_connections (beyond
max_connections()), 500 internal_error (a handler that raised before starting its response: also
`handler_failed`). A chunked body over the limit, a body that stalls and a body that breaks its
chunked framing once its handler runs fail its stream with dataplane.errors.BodyTooLarge /
BodyReadTimeout / BodyMalformed: the handler answers them (413/408/400); the connection closes after.
"""

from __future__ import annotations

from proxy.dataplane.http1.body import EMPTY, HIGH_WATER, LOW_WATER, BodyMalformed, BodyStream, ClientGone
from proxy.dataplane.http1.connection import Http1Connection
from proxy.dataplane.http1.request import Request
from proxy.dataplane.http1.responder import Responder
from proxy.dataplane.http1.server import Handler, Http1Server

__all__ = [
    "EMPTY", "HIGH_WATER", "LOW_WATER", "BodyMalformed", "BodyStream", "ClientGone", "Handler",
    "Http1Connection", "Http1Server", "Request", "Responder",
]  # fmt: skip
