"""A fake upstream as its own process, for tests that kill, restart or signal real processes.

    python -m tests.integration.proxy.fake_upstream --name new --port 8123

Answers every request with {"served_by": NAME, "path": ...}; `/slow?s=0.5` waits first. Prints
"listening" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


def app(name: str) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path.endswith("/slow"):
            await asyncio.sleep(float(request.query.get("s", "0.5")))
        return web.json_response({"served_by": name, "path": request.path})

    application = web.Application()
    application.router.add_route("*", "/{tail:.*}", answer)
    return application


async def main(name: str, port: int) -> None:
    runner = web.AppRunner(app(name))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("listening", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.name, args.port))
