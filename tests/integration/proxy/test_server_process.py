"""The real `python -m proxy serve`: both listeners in one process, SIGHUP reloads, SIGTERM stops cleanly
(and writes the access lines still buffered)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.proxy_process import Served as Running
from tests.faults.proxy_process import collect_logs, serve_proxy
from tests.integration.proxy.conftest import (
    WAIT_S,
    closed_port,
    config_dict,
    images_route,
    url_of,
    write_config,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def served(tmp_path: Path, upstreams: Any) -> AsyncIterator[tuple[Running, Path, dict[str, str]]]:
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    config = write_config(tmp_path / "routes.yaml", config_dict(urls, routes=[images_route(0)]))
    port, admin_port = closed_port(), closed_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port),
        "--admin-host", "127.0.0.1", "--admin-port", str(admin_port),
        cwd=REPO,
        env={**os.environ, "STRANGLER_ADMIN_TOKEN": "s3cret", "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    running = Running(process, port, admin_port)
    drain = asyncio.ensure_future(collect_logs(running, process.stderr))
    try:
        await running.wait_for_log("proxy_listening")
        yield running, config, urls
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        drain.cancel()


async def _metric(session: aiohttp.ClientSession, running: Running, name: str) -> float:
    async with session.get(f"http://127.0.0.1:{running.admin_port}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_sighup_reloads_and_sigterm_stops_the_real_process(
    served: tuple[Running, Path, dict[str, str]],
) -> None:
    running, config, urls = served
    public = f"http://127.0.0.1:{running.port}"
    # start-up's objects are out of the collector's sight before serving (server.freeze_startup_objects)
    assert running.logged("proxy_listening")[0]["frozen_objects"] > 10_000
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{public}/api/images") as response:
            assert (await response.json())["served_by"] == "legacy"
        success = 'strangler_config_reloads_total{result="success"}'
        assert await _metric(session, running, success) == 0

        running.process.send_signal(signal.SIGHUP)  # the file is unchanged: only the signal can reload
        await running.wait_for_log("config_unchanged", trigger="sighup")
        assert await _metric(session, running, success) == 1

        write_config(config, config_dict(urls, routes=[images_route(100)]))
        running.process.send_signal(signal.SIGHUP)
        await running.wait_for_log("config_reloaded")  # by the signal or the watcher, whichever is first
        async with session.get(f"{public}/api/images") as response:
            assert (await response.json())["served_by"] == "new"

        async with session.get(
            f"http://127.0.0.1:{running.admin_port}/config", headers={"Authorization": "Bearer s3cret"}
        ) as response:
            assert (await response.json())["config"]["routes"][0]["rollout"]["percent"] == 100

    running.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(running.process.wait(), WAIT_S * 2) == 0
    await running.wait_for_log("proxy_stopped")
    access = [line for line in running.lines if line.get("event") == "request"]
    assert access
    # The public listener's lines come in batches, so the admin listener's (/metrics, /config) may be first.
    public = [line for line in access if line.get("path") == "/api/images"]
    assert {"method", "path", "status", "duration_ms", "route", "upstream", "role", "request_id"} <= set(
        public[0]
    )
    assert all(line.get("service") == "proxy" for line in access)


async def test_an_invalid_file_at_start_exits_1_listing_every_error(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text("version: 1\nupstreams: {}\ndefault_upstream: legacy\nextra: 1\n", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(closed_port()),
        "--admin-port", str(closed_port()),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), WAIT_S * 2)
    assert process.returncode == 1
    assert f"{config}:4: extra:".encode() in err


async def test_a_proxy_stopped_by_sigterm_has_written_one_access_line_per_request(
    tmp_path: Path, upstreams: Any
) -> None:
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    config = write_config(tmp_path / "routes.yaml", config_dict(urls, routes=[images_route(0)]))
    sent = [f"sigterm-{i:03d}" for i in range(30)]
    # A flush interval far longer than the test: the lines are still buffered when SIGTERM comes.
    async with serve_proxy(config, args=["--access-log-flush-ms", "10000"]) as running:
        async with aiohttp.ClientSession() as session:
            for request_id in sent:
                headers = {"X-Request-ID": request_id}
                async with session.get(f"{running.url}/api/images", headers=headers) as response:
                    assert response.status == 200
        running.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(running.process.wait(), WAIT_S * 2) == 0
    # serve_proxy has read the process's stderr to its end

    access = running.logged("request")
    assert sorted(line["request_id"] for line in access) == sent  # each once, none lost
    assert not running.logged("(not json)")
    assert running.lines[-1]["event"] == "proxy_stopped"
