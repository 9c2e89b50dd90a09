"""`strangler-proxy serve --workers 2`: two pre-forked workers share the public port and stop cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpServer

from tests.integration.proxy.conftest import WAIT_S, closed_port, config_dict, url_of, write_config

REPO = Path(__file__).resolve().parents[3]
REQUESTS = 40


def _upstream() -> web.Application:
    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"served_by": "upstream"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def _wait_up(session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    for _ in range(int(WAIT_S * 4 / 0.1)):
        assert process.returncode is None, "the proxy exited during start-up"
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


def _two_free_ports() -> int:
    """A port p with p and p + 1 both free: worker i's admin listener binds --admin-port + i."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def _served(metrics_text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("strangler_requests_total{") and 'code="200"' in line
    )


async def test_two_workers_share_the_port_count_their_own_requests_and_stop_on_sigterm(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    upstream = await aiohttp_server(_upstream())
    config = write_config(tmp_path / "routes.yaml", config_dict({"legacy": url_of(upstream)}))
    port, admin_port = closed_port(), _two_free_ports()
    log_path = tmp_path / "proxy.log"
    log = log_path.open("wb")  # read back when start-up fails: the reason is in the proxy's log
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--config", str(config), "--workers", "2",
        "--host", "127.0.0.1", "--port", str(port),
        "--admin-host", "127.0.0.1", "--admin-port", str(admin_port),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
            admins = [f"http://127.0.0.1:{admin_port + i}" for i in range(2)]
            for admin in admins:
                try:
                    await _wait_up(session, f"{admin}/healthz", process)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{log_path.read_text(errors='replace')[-3000:]}") from None

            async def one() -> int:
                # A new connection each time: the kernel spreads connections, not requests.
                async with session.get(f"http://127.0.0.1:{port}/x", headers={"Connection": "close"}) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(one() for _ in range(REQUESTS)))
            per_worker = []
            for admin in admins:
                async with session.get(f"{admin}/metrics") as response:
                    per_worker.append(_served(await response.text()))

        assert statuses == [200] * REQUESTS
        assert sum(per_worker) == REQUESTS  # every request counted once, by the worker that served it
        assert all(count > 0 for count in per_worker)  # both workers took connections
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT_S * 4) == 0
        assert not await _accepts(port)  # no worker is left listening
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
