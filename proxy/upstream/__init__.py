"""The proxy's HTTP/1.1 client of its upstreams, at the protocol level: asyncio Protocols fed by llhttp
(httptools, strict parsing), one keep-alive Pool per upstream.

Pool.request() sends one request and returns a Response (the head; the body read whole or streamed with
flow control); release() or close() ends the exchange. Failures are proxy.client.UpstreamError (connect,
timeout, reset, protocol). A leaf: imports nothing of the proxy but proxy.client.

    response = await pool.request("GET", target, headers, connect_timeout_s=2, read_timeout_s=30)
    try:
        async for chunk in response.chunks():
            ...
    finally:
        response.release()  # pooled only if the whole message arrived cleanly; closed otherwise

wire.py renders what is sent (pure); send.py sends it; connection.py is the Protocol (parser, flow
control); timer.py the read timer; response.py the caller's view; pool.py the pool; errors.py the
failures; state.py the phases and flow-control marks they share.
"""

from proxy.upstream.errors import BodyLengthError, ResponseTooLarge
from proxy.upstream.pool import Pool
from proxy.upstream.response import Response
from proxy.upstream.send import Body
from proxy.upstream.state import HIGH_WATER, LOW_WATER
from proxy.upstream.wire import Headers, text_headers

__all__ = [
    "HIGH_WATER", "LOW_WATER", "Body", "BodyLengthError", "Headers", "Pool", "Response", "ResponseTooLarge",
    "text_headers",
]  # fmt: skip
