"""Real processes on loopback: the candidate killed mid-load and restarted; the proxy drained by SIGTERM."""

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
from aiohttp.test_utils import TestServer

from tests.integration.proxy.conftest import (
    WAIT_S,
    ProxyFactory,
    Recorder,
    closed_port,
    config_dict,
    images_route,
    url_of,
    write_config,
)

REPO = Path(__file__).resolve().parents[3]
TOKEN = {"Authorization": "Bearer s3cret"}
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


async def start_upstream(name: str, port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.proxy.fake_upstream", "--name", name, "--port", str(port),
        cwd=REPO, env=ENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), WAIT_S * 2) == b"listening\n"
    return process


@pytest.fixture
async def candidate_port() -> AsyncIterator[tuple[int, list[asyncio.subprocess.Process]]]:
    started: list[asyncio.subprocess.Process] = []
    yield closed_port(), started
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def load(client: Any, results: list[tuple[int, str]], stop: asyncio.Event, *, cap: int) -> None:
    """One client in a loop (bounded by `cap` requests): GET, record (status, served_by)."""
    for _ in range(cap):
        if stop.is_set():
            return
        response = await client.get("/api/images/x")
        body = await response.json()
        results.append((response.status, body.get("served_by", body.get("error", {}).get("code", "?"))))


async def wait_until(predicate: Any, what: str) -> None:
    async with asyncio.timeout(WAIT_S * 2):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_the_candidate_killed_mid_load_costs_clients_nothing_then_trips_the_guard_and_opens_the_breaker(
    make_proxy: ProxyFactory,
    upstreams: dict[str, tuple[TestServer, Recorder]],
    candidate_port: tuple[int, list[asyncio.subprocess.Process]],
) -> None:
    port, started = candidate_port
    started.append(await start_upstream("new", port))
    config = config_dict(
        {"legacy": url_of(upstreams["legacy"][0]), "new": f"http://127.0.0.1:{port}"},
        routes=[images_route(100,
                             fallback={"when": ["connect_error", "timeout", "5xx"]},
                             guard={"max_error_rate": 0.2, "min_requests": 10, "window_s": 600},
                             ownership=[{"path_regex": "^/api/images/img_", "owner": "candidate"}])],
    )  # fmt: skip
    config["upstreams"]["new"]["circuit"] = {"failures": 3, "open_s": 0.2, "max_open_s": 0.2}
    proxy = await make_proxy(config)
    results: list[tuple[int, str]] = []
    stop = asyncio.Event()
    clients = [asyncio.create_task(load(proxy.client, results, stop, cap=2000)) for _ in range(4)]
    try:
        await wait_until(lambda: sum(served == "new" for _, served in results) >= 20, "the candidate serving")
        started[0].kill()  # SIGKILL: in-flight requests are reset, new connections refused
        at_kill = len(results)
        await wait_until(lambda: len(results) >= at_kill + 100, "load after the kill")
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert {status for status, _ in results} == {200}  # not one error reached a client
    assert {served for _, served in results} == {"new", "legacy"}
    assert proxy.sample("strangler_guard_tripped", route="images") == 1
    assert proxy.sample("strangler_rollout_percent", route="images") == 0
    assert proxy.sample("strangler_circuit_transitions_total", upstream="new", state="open") >= 1
    # Which connection failure comes first is a race (pooled connections are reset, new ones are
    # refused, and after three the breaker answers): every one of them must have fallen back.
    fell_back = {
        reason: proxy.sample("strangler_fallbacks_total", route="images", reason=reason)
        for reason in ("connect_error", "reset", "circuit_open")
    }
    assert sum(fell_back.values()) >= 1, fell_back
    after_trip = results[-20:]
    assert all(served == "legacy" for _, served in after_trip)

    # Restarted: a request the candidate owns probes the breaker and closes it; the guard stays tripped.
    started.append(await start_upstream("new", port))
    async with asyncio.timeout(WAIT_S * 2):
        while True:
            owned = await proxy.client.get("/api/images/img_0123")
            if owned.status == 200 and (await owned.json())["served_by"] == "new":
                break
            await asyncio.sleep(0.05)
    assert proxy.sample("strangler_circuit_open", upstream="new") == 0
    assert proxy.sample("strangler_circuit_transitions_total", upstream="new", state="closed") >= 1
    response = await proxy.client.get("/api/images/x")
    assert (await response.json())["served_by"] == "legacy"  # still rolled back
    assert (await proxy.admin.post("/routes/images/guard/reset", headers=TOKEN)).status == 200
    response = await proxy.client.get("/api/images/x")
    assert (await response.json())["served_by"] == "new"


async def test_sigterm_lets_every_in_flight_request_finish_then_exits_0(
    tmp_path: Path, candidate_port: tuple[int, list[asyncio.subprocess.Process]]
) -> None:
    upstream_port, started = candidate_port
    started.append(await start_upstream("legacy", upstream_port))
    config = write_config(tmp_path / "routes.yaml", config_dict({"legacy": f"http://127.0.0.1:{upstream_port}"}))
    port, admin_port = closed_port(), closed_port()
    proxy = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--config", str(config), "--host", "127.0.0.1",
        "--port", str(port), "--admin-host", "127.0.0.1", "--admin-port", str(admin_port),
        cwd=REPO, env=ENV, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proxy.stderr is not None
    try:
        async with asyncio.timeout(WAIT_S * 2):
            while b"proxy_listening" not in (line := await proxy.stderr.readline()):
                # at EOF readline returns at once without yielding: the timeout could never fire
                assert line, f"the proxy exited before it listened (rc={await proxy.wait()})"
        async with aiohttp.ClientSession() as session:

            async def slow(index: int) -> tuple[int, dict[str, Any]]:
                async with session.get(f"http://127.0.0.1:{port}/slow?s=1&i={index}") as response:
                    return response.status, await response.json()

            in_flight = [asyncio.create_task(slow(i)) for i in range(8)]
            await asyncio.sleep(0.3)  # let them reach the upstream (they take 1 s there)
            proxy.send_signal(signal.SIGTERM)
            answers = await asyncio.wait_for(asyncio.gather(*in_flight), WAIT_S * 2)
        assert answers == [(200, {"served_by": "legacy", "path": "/slow"})] * 8
        assert await asyncio.wait_for(proxy.wait(), WAIT_S * 2) == 0
        with pytest.raises(ConnectionRefusedError):  # no longer accepting
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        if proxy.returncode is None:
            proxy.kill()
            await proxy.wait()
