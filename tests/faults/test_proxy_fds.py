"""Finding 6 of issue 12, on a real proxy process: the open-file limit must not be hit before the
connection cap. Started with RLIMIT_NOFILE 128 (hard 256) and `max_connections: 10000`, the proxy raises
its soft limit to 256, says at ERROR that 10000 connections cannot be honoured and how many can, and
holds to that: idle clients fill it, every client after them gets the JSON 503 (never a reset or a
hang), and the file watcher still reads routes.yaml (never `config_file_unreadable`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.dataplane.fdlimit import FDS_PER_CONNECTION, RESERVED_FDS
from tests.faults.proxy_process import WAIT_S, serve_proxy
from tests.integration.proxy.conftest import Recorder, config_dict, upstream_app, url_of, write_config

SOFT, HARD = 128, 256
EXTRA_CLIENTS = 200  # beyond the cap; without it, more than the descriptors left: accept() would fail


def config(url: str, max_connections: int) -> dict[str, Any]:
    doc = config_dict({"legacy": url})
    doc["limits"] = {"max_connections": max_connections, "client_read_timeout_s": 120}  # idle stays idle
    return doc


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    raw = await asyncio.wait_for(reader.read(-1), WAIT_S)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def test_clients_beyond_what_the_descriptors_allow_get_the_json_503_and_the_watcher_still_reads(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> None:
    url = url_of(await aiohttp_server(upstream_app(Recorder("legacy"))))
    path = write_config(tmp_path / "routes.yaml", config(url, 10_000))

    async with serve_proxy(path, nofile=(SOFT, HARD)) as proxy:
        raised = await proxy.wait_for_log("open_files_limit_raised")
        assert (raised["previous_soft"], raised["soft"]) == (SOFT, HARD)
        said = await proxy.wait_for_log("max_connections_exceeds_open_files")
        cap = (HARD - RESERVED_FDS) // FDS_PER_CONNECTION
        assert said["level"] == "error"
        assert (said["max_connections"], said["open_files_limit"], said["effective_max_connections"]) == (
            10_000, HARD, cap,
        )
        assert "ulimit -n" in said["detail"]

        held = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(cap)]
        try:
            for _ in range(EXTRA_CLIENTS):
                reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
                status, body = await answer(reader)  # answered without a byte sent: the cap, not a request
                writer.close()
                assert (status, body["error"]["code"]) == (503, "too_many_connections")

            reader, writer = held[0]  # an accepted client is served as ever
            writer.write(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            status, body = await answer(reader)
            assert (status, body["served_by"]) == (200, "legacy")

            # At the cap, the watcher still opens routes.yaml: a file renamed into place goes live.
            staged = write_config(tmp_path / "routes.yaml.new", config(url, 20_000))
            os.replace(staged, path)
            await proxy.wait_for_log("config_reloaded", trigger="watch")
            again = await proxy.wait_for_log("max_connections_exceeds_open_files", max_connections=20_000)
            assert again["effective_max_connections"] == cap
        finally:
            for _, writer in held:
                writer.close()

        assert await proxy.metric("strangler_connections_refused_total") == EXTRA_CLIENTS
        assert await proxy.metric("strangler_connection_limit") == cap
        assert await proxy.metric("strangler_open_files_limit") == HARD
        assert proxy.logged("connections_refused")  # said, at most every 10 s, with the count
    assert proxy.logged("config_file_unreadable") == []
    assert proxy.logged("config_watch_fd_shortage") == []
