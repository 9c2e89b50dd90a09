"""`strangler-proxy serve --workers N|auto` as real processes: N workers share the public port behind one
admin port that covers them all; a killed worker is replaced, a crash loop stops the proxy with exit 1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpServer

from proxy.cpus import usable_cpus
from tests.faults.proxy_process import Served, collect_logs
from tests.integration.proxy.conftest import WAIT_S, closed_port, config_dict, url_of, write_config

REPO = Path(__file__).resolve().parents[3]
TOKEN = "workers-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOUND_S = 60.0  # the bound on a crash loop or a replacement (interpreter starts); never asserted
REQUESTS = 40


def _upstream() -> web.Application:
    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"served_by": "upstream"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def one_upstream(tmp_path: Path, aiohttp_server: AiohttpServer) -> Path:
    upstream = await aiohttp_server(_upstream())
    return write_config(tmp_path / "routes.yaml", config_dict({"legacy": url_of(upstream)}))


@asynccontextmanager
async def workers_proxy(config: Path, workers: str, *, args: Sequence[str] = ()) -> AsyncIterator[Served]:
    """The proxy with `--workers workers`; its JSON log lines collected. SIGKILL at the end if still up."""
    port, admin_port = closed_port(), closed_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", "--config", str(config), "--workers", workers,
        "--host", "127.0.0.1", "--port", str(port),
        "--admin-host", "127.0.0.1", "--admin-port", str(admin_port),
        "--reload-settle-s", "3600", *args,  # an edit in place goes live only by /reload or SIGHUP here
        cwd=REPO, env={**os.environ, "STRANGLER_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    served = Served(process, port, admin_port)
    collecting = asyncio.ensure_future(collect_logs(served, process.stderr))
    try:
        yield served
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.wait_for(collecting, WAIT_S)


async def started(served: Served) -> list[dict[str, Any]]:
    """Wait until the parent's admin listener is up; each worker as GET /workers shows it."""
    try:
        await asyncio.wait_for(served.wait_for_log("proxy_workers_started"), BOUND_S)
    except TimeoutError:
        raise AssertionError(f"the proxy did not start: {served.lines[-8:]}") from None
    return await workers_of(served)


async def workers_of(served: Served) -> list[dict[str, Any]]:
    return list((await admin(served, "GET", "/workers"))["workers"])


async def admin(served: Served, method: str, path: str) -> dict[str, Any]:
    """The parent's answer on the one admin port, with the token."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, served.admin + path, headers=AUTH) as got,
    ):
        body: dict[str, Any] = await got.json()
        assert got.status == 200, body
        return body


async def send(served: Served, n: int) -> list[int]:
    """`n` requests, each on its own connection: the kernel spreads connections, not requests."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:

        async def one() -> int:
            async with session.get(f"{served.url}/x", headers={"Connection": "close"}) as response:
                await response.read()
                return response.status

        return list(await asyncio.gather(*(one() for _ in range(n))))


async def healthy(served: Served) -> None:
    """Until the parent's /healthz says every worker answers."""
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{served.admin}/healthz") as got:
                if got.status == 200:
                    return
            await asyncio.sleep(0.1)


async def worker_metric(socket_path: str, name: str, **labels: str) -> float:
    """One worker's own count, read from its private admin socket (the parent's view sums them)."""
    connector = aiohttp.UnixConnector(path=socket_path)
    async with aiohttp.ClientSession(connector=connector) as session, session.get("http://w/metrics") as got:
        text = await got.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def stopped(served: Served) -> int:
    served.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(served.process.wait(), BOUND_S)


async def accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def test_two_workers_share_the_port_and_one_admin_port_counts_and_reloads_them_all(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    upstream = url_of(await aiohttp_server(_upstream()))
    config = write_config(tmp_path / "routes.yaml", config_dict({"legacy": upstream}))
    async with workers_proxy(config, "2") as served:
        workers = await started(served)
        assert [w["worker"] for w in workers] == [0, 1]

        assert await send(served, REQUESTS) == [200] * REQUESTS
        per_worker = [await worker_metric(w["admin_socket"], "strangler_requests_total", code="200")
                      for w in workers]  # fmt: skip
        assert all(count > 0 for count in per_worker), per_worker  # both workers took connections
        assert sum(per_worker) == REQUESTS  # each request counted once, by the worker that served it
        assert await served.metric("strangler_requests_total", code="200") == REQUESTS  # and the parent sums
        assert await served.metric("strangler_workers") == 2

        write_config(config, config_dict({"legacy": upstream, "spare": upstream}))
        body = await admin(served, "POST", "/reload")
        assert [w["changed"] for w in body["workers"]] == [True, True]
        for worker in workers:
            socket_path = worker["admin_socket"]
            assert await worker_metric(socket_path, "strangler_config_reloads_total", result="success") == 1

        served.process.send_signal(signal.SIGHUP)  # forwarded: every worker reloads
        for index in (0, 1):
            await served.wait_for_log("config_unchanged", trigger="sighup", worker=index)

        assert await stopped(served) == 0
        assert not await accepts(served.port)  # no worker is left listening


async def test_a_killed_worker_is_replaced_while_the_others_serve_and_no_count_goes_back(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    config = await one_upstream(tmp_path, aiohttp_server)
    async with workers_proxy(config, "2") as served:
        workers = await started(served)
        assert await send(served, 20) == [200] * 20
        assert await served.metric("strangler_requests_total") == 20  # the parent scraped both

        os.kill(workers[0]["pid"], signal.SIGKILL)
        exited = await served.wait_for_log("proxy_worker_exited", worker=0)
        assert (exited["level"], exited["code"], exited["signal"]) == ("error", -9, "SIGKILL")
        assert await send(served, 10) == [200] * 10  # the other worker serves meanwhile

        await asyncio.wait_for(served.wait_for_log("proxy_worker_replaced", worker=0), BOUND_S)
        await asyncio.wait_for(healthy(served), BOUND_S)  # the replacement answers on its admin socket
        replaced = (await workers_of(served))[0]
        assert replaced["pid"] != workers[0]["pid"]
        assert replaced["admin_socket"] == workers[0]["admin_socket"]  # same index, same endpoint
        assert await served.metric("strangler_workers_restarts_total") == 1
        assert await served.metric("strangler_requests_total") == 30  # what the dead worker served stays
        assert await stopped(served) == 0


async def test_a_worker_that_keeps_dying_stops_the_proxy_with_exit_1_and_says_why(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    config = await one_upstream(tmp_path, aiohttp_server)
    async with workers_proxy(config, "2") as served:
        workers = await started(served)
        config.write_text("version: 2\n")  # the running workers keep their config; a new one cannot start

        os.kill(workers[0]["pid"], signal.SIGKILL)

        assert await asyncio.wait_for(served.process.wait(), BOUND_S) == 1
        (loop,) = served.logged("proxy_workers_crash_loop")
        assert (loop["level"], loop["worker"], loop["restarts"]) == ("error", 0, 5)
        assert len(served.logged("proxy_worker_replaced")) == 5
        assert not await accepts(served.port)


async def test_workers_whose_parent_is_killed_stop_by_themselves_and_free_the_port(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    config = await one_upstream(tmp_path, aiohttp_server)
    async with workers_proxy(config, "2") as served:
        pids = [worker["pid"] for worker in await started(served)]
        assert await send(served, 4) == [200] * 4
        try:
            served.process.kill()  # no SIGTERM fan-out: the workers must notice by themselves
            await served.process.wait()
            for worker in (0, 1):
                gone = await asyncio.wait_for(served.wait_for_log("proxy_parent_gone", worker=worker),
                                              BOUND_S)  # fmt: skip
                assert (gone["level"], gone["parent"]) == ("error", served.process.pid)
                await asyncio.wait_for(served.wait_for_log("proxy_stopped", worker=worker), BOUND_S)
            assert not await accepts(served.port)
        finally:  # a worker that missed its parent's death must not outlive the test
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


async def test_workers_auto_starts_one_worker_per_usable_cpu(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    config = await one_upstream(tmp_path, aiohttp_server)
    expected = usable_cpus()
    async with workers_proxy(config, "auto") as served:
        if expected == 1:  # one CPU: the single-process path, no parent
            listening = await served.wait_for_log("proxy_listening")
            assert "worker" not in listening
        else:
            assert len(await started(served)) == expected
            assert await served.metric("strangler_workers") == expected
        assert await stopped(served) == 0


async def test_workers_sharing_one_stderr_write_every_access_line_whole_and_once_by_their_exit(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    config = await one_upstream(tmp_path, aiohttp_server)
    sent = {f"whole-{i:03d}": f"/{i:03d}/" + "p" * 1200 for i in range(REQUESTS)}  # ~3 lines per write
    # Lines wait for SIGTERM (the interval is far longer than the test): each worker writes its batch as it
    # stops, into the one stderr pipe both inherited from the parent.
    async with workers_proxy(config, "2", args=["--access-log-flush-ms", "10000"]) as served:
        workers = await started(served)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:

            async def one(request_id: str, path: str) -> int:
                headers = {"Connection": "close", "X-Request-ID": request_id}
                async with session.get(served.url + path, headers=headers) as response:
                    await response.read()
                    return response.status

            assert await asyncio.gather(*(one(*item) for item in sent.items())) == [200] * REQUESTS
        for worker in workers:  # both have lines to write
            assert await worker_metric(worker["admin_socket"], "strangler_requests_total") > 0
        assert await stopped(served) == 0
    # workers_proxy has read the shared stderr to its end

    assert not served.logged("(not json)")  # every line whole (each write: whole lines, <= PIPE_BUF bytes)
    public = [line for line in served.logged("request") if "route" in line]  # not the admin listeners'
    assert len(public) == REQUESTS  # each line once
    assert {line["request_id"]: line["path"] for line in public} == sent
