"""The benchmark's upstream: small JSON answers and a 10 MB body, optionally after a fixed delay.

Run as `python -m bench.upstream --port P [--delay S]`. Kept minimal on purpose (no logs, no metrics),
like the upstream of the issue's baseline measurements, so that it costs the same for every candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from aiohttp import web

SMALL_BODY = b'{"ok": true, "service": "bench-upstream", "items": [1, 2, 3]}'
BIG_BYTES = 10 * 1024 * 1024


def create_app(*, delay_s: float = 0.0) -> web.Application:
    big = b"x" * BIG_BYTES

    async def small(_: web.Request) -> web.Response:
        if delay_s:
            await asyncio.sleep(delay_s)
        return web.Response(body=SMALL_BODY, content_type="application/json")

    async def large(_: web.Request) -> web.Response:
        return web.Response(body=big, content_type="application/octet-stream")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status": "ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/big", large)
    app.router.add_route("*", "/{tail:.*}", small)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each small answer")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(create_app(delay_s=args.delay), host=args.host, port=args.port, access_log=None,
                print=None, loop=loop)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
