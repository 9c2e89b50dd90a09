"""Finding 8 of issue 12, on a real proxy process: wrong admin tokens sent as fast as the listener answers
are counted, logged at WARNING with the peer (never the token), and the peer is throttled with 429 and
Retry-After, so only a handful of guesses are ever compared; another peer with the right token is served."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.admin.auth import FREE_FAILURES
from tests.faults.proxy_process import TOKEN, WAIT_S, Served, serve_proxy
from tests.integration.proxy.conftest import Recorder, config_dict, upstream_app, url_of, write_config

GUESSES = 100


@pytest.fixture
async def proxy(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> AsyncIterator[Served]:
    doc = config_dict({"legacy": url_of(await aiohttp_server(upstream_app(Recorder("legacy"))))})
    async with serve_proxy(write_config(tmp_path / "routes.yaml", doc)) as served:
        yield served


async def test_a_burst_of_wrong_tokens_is_counted_logged_and_throttled_while_another_peer_gets_in(
    proxy: Served,
) -> None:
    timeout = aiohttp.ClientTimeout(total=WAIT_S)
    answers: list[tuple[int, str | None, str]] = []
    async with aiohttp.ClientSession(timeout=timeout) as attacker:
        for guess in range(GUESSES):
            headers = {"Authorization": f"Bearer guess-{guess:04d}"}
            async with attacker.get(f"{proxy.admin}/config", headers=headers) as response:
                code = (await response.json())["error"]["code"]
                answers.append((response.status, response.headers.get("Retry-After"), code))

    statuses = [status for status, _, _ in answers]
    assert statuses[:FREE_FAILURES] == [401] * FREE_FAILURES
    compared = statuses.count(401)
    assert compared < GUESSES // 2  # most guesses were never compared: 1, 2, 4... s blocks, not 50/s
    throttled = [(retry, code) for status, retry, code in answers if status == 429]
    assert len(throttled) == GUESSES - compared
    assert all(code == "too_many_auth_failures" and retry is not None and int(retry) >= 1
               for retry, code in throttled)  # fmt: skip

    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))  # another peer, same loopback
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as operator:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with operator.get(f"{proxy.admin}/config", headers=auth) as response:
            assert response.status == 200

    assert await proxy.metric("strangler_admin_auth_failures_total", reason="wrong") == compared
    assert await proxy.metric("strangler_admin_auth_failures_total", reason="throttled") == len(throttled)
    warned = proxy.logged("admin_auth_failed")
    assert len(warned) == compared
    assert {(line["level"], line["peer"], line["reason"]) for line in warned} == {
        ("warning", "127.0.0.1", "wrong")
    }
    assert not any("guess-" in repr(line) for line in proxy.lines)  # what was sent is never written
