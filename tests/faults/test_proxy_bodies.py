"""Findings 3 and 4 of the faults issue, on real processes: slow request bodies must not hang the site,
and trickling bodies on a fallback route must not grow the proxy's memory past its budget."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.proxy_stack import Proxy, stack

MiB = 1024 * 1024
SLOW_UPLOADS = 1000
TRICKLERS = 300
DECLARED, SENT = 1_048_576, 1_048_000  # the finding's numbers: all but the last 576 bytes, then a trickle


def config(urls: dict[str, str], *, request_body: str = "buffer", **limits: Any) -> dict[str, Any]:
    upstreams = {
        name: {"url": url, "max_connections": 100, "queue_timeout_s": 0.5} for name, url in urls.items()
    }
    routes: list[dict[str, Any]] = [{
        "name": "uploads", "match": {"path_prefix": "/api/orders"}, "primary": "legacy",
        "request_body": request_body,
    }]  # fmt: skip
    if "new" in urls:
        routes = [{
            "name": "echo", "match": {"path_prefix": "/api/echo"}, "primary": "legacy", "candidate": "new",
            "rollout": {"percent": 100}, "fallback": {"when": ["5xx", "timeout"]},
            "request_body": request_body,
        }]  # fmt: skip
    return {"version": 1, "upstreams": upstreams, "default_upstream": "legacy", "routes": routes,
            "limits": {"max_connections": 4096, **limits}}  # fmt: skip


async def open_slow(port: int, path: str, declared: int, first: bytes) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {declared}\r\n\r\n".encode() + first)
    await writer.drain()
    return writer


async def storefront_answers(proxy: Proxy, times: int) -> list[tuple[int, float]]:
    """GET / through the proxy, one after another; (status, seconds) each, 1 s at most per answer."""
    out = []
    timeout = aiohttp.ClientTimeout(total=1.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(times):
            started = time.monotonic()
            async with session.get(f"{proxy.url}/") as response:
                await response.read()
                out.append((response.status, time.monotonic() - started))
            await asyncio.sleep(0.1)
    return out


async def until(check: Callable[[], bool], deadline_s: float = 30.0) -> None:
    give_up = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < give_up, "condition not reached in time"
        await asyncio.sleep(0.1)


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        with contextlib.suppress(Exception):
            writer.close()


async def test_a_thousand_slow_uploads_leave_the_storefront_answering(tmp_path: Path) -> None:
    with stack(tmp_path, config, "legacy") as (proxy, _):
        writers = [await open_slow(proxy.port, "/api/orders", 1000, b"{") for _ in range(SLOW_UPLOADS)]
        try:
            await until(lambda: proxy.metric("strangler_buffer_bytes", kind="memory") >= SLOW_UPLOADS)

            async def trickle() -> None:
                for _ in range(6):  # one byte per upload every half second, far from the 1,000 declared
                    for writer in writers:
                        writer.write(b" ")
                    await asyncio.sleep(0.5)

            trickling = asyncio.create_task(trickle())
            answers = await storefront_answers(proxy, 10)
            await trickling
        finally:
            close_all(writers)
        assert [status for status, _ in answers] == [200] * 10  # each within its 1 s client timeout
        assert proxy.metric("strangler_upstream_busy_total") == 0  # no upload ever took an upstream slot
        await until(lambda: proxy.metric("strangler_buffer_bytes", kind="memory") == 0)


async def test_slow_uploads_on_a_streaming_route_fill_only_that_upstreams_slots(tmp_path: Path) -> None:
    """The finding's own setup (bodies streamed to the upstream): the cap and its short queue turn what
    was a site-wide hang into quick 503 upstream_busy answers."""
    with stack(tmp_path, lambda urls: config(urls, request_body="stream"), "legacy") as (proxy, _):
        writers = [await open_slow(proxy.port, "/api/orders", 1000, b"{") for _ in range(300)]
        try:
            await until(lambda: proxy.metric("strangler_upstream_busy_total") > 0)
            answers = await storefront_answers(proxy, 5)
        finally:
            close_all(writers)
        assert {status for status, _ in answers} <= {200, 503}  # answered within 1 s, never a hang
        assert 503 in {status for status, _ in answers}


@pytest.mark.parametrize("request_body", ["stream", "buffer"])
async def test_trickling_fallback_bodies_stay_within_the_memory_budget(
    tmp_path: Path, request_body: str
) -> None:
    budget = 16 * MiB
    make = lambda urls: config(urls, request_body=request_body, memory_budget_bytes=budget)  # noqa: E731
    with stack(tmp_path, make, "legacy", "new") as (proxy, _):
        before = proxy.rss_bytes()
        chunk = b"x" * SENT
        writers = []
        try:
            for _ in range(TRICKLERS):
                writers.append(await open_slow(proxy.port, "/api/echo", DECLARED, chunk))
            await until(
                lambda: (
                    proxy.metric("strangler_buffer_bytes") >= min(budget, TRICKLERS * SENT) * 0.9
                    or proxy.metric("strangler_buffer_bytes", kind="spool") >= TRICKLERS * SENT * 0.9
                )
            )
            for writer in writers:
                writer.write(b"x")
            await asyncio.sleep(1.0)
            grown = proxy.rss_bytes() - before
            memory_held = proxy.metric("strangler_buffer_bytes", kind="memory")
        finally:
            close_all(writers)
        assert memory_held <= budget
        # Before the budget, the same traffic grew the proxy by ~310 MiB (measured here with a 1 GiB
        # budget) and never gave it back. Buffered (the default), the bodies go to the spool: the growth
        # is the budget at most, plus slack. Streamed, each relayed upload also holds aiohttp's own
        # socket-to-socket buffers (~330 KiB each, measured with no fallback at all): that is the
        # relay's, not a buffer the proxy keeps, and the next issue's data plane replaces it.
        relay = TRICKLERS * 384 * 1024 if request_body == "stream" else 0
        assert grown < budget + relay + 32 * MiB, f"RSS grew {grown / MiB:.0f} MiB"
        await until(lambda: proxy.metric("strangler_buffer_bytes") == 0)  # all given back
