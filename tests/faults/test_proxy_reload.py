"""Finding 5 of issue 12, on a real proxy process: live reload must never apply a half-written routes.yaml.

An editor truncates the file, writes part of it, pauses, writes the rest. The part is a valid config of
its own: no routes and `max_body_bytes: 10` (the cut falls inside `max_body_bytes: 1048576`). Under
steady traffic, 20 such edits: no request may ever see that config (a 413, or the default upstream
instead of the route's candidate), and the reload logs and metrics show only whole files applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import parse_config
from tests.faults.proxy_process import WAIT_S, Served, serve_proxy
from tests.integration.proxy.conftest import Recorder, upstream_app, url_of

EDITS, GROUP = 20, 10  # after every GROUP edits the test waits for the last one to settle and go live
PAUSE_S = 0.3  # the half-written state stays this long: longer than the watcher's poll (0.5 s) at times
BETWEEN_S = 0.1  # a whole file stays this long before the next edit truncates it
CUT = "max_body_bytes: 10"  # the prefix ends here: the limit reads 10, every route is gone
BODY = b"x" * 100


def routes_text(edit: int, urls: dict[str, str]) -> str:
    return (
        f"# edit {edit}\n"
        "version: 1\n"
        "upstreams:\n"
        f"  legacy: {{url: '{urls['legacy']}'}}\n"
        f"  new: {{url: '{urls['new']}'}}\n"
        "default_upstream: legacy\n"
        "limits:\n"
        "  max_body_bytes: 1048576\n"
        "routes:\n"
        "  - name: images\n"
        "    match: {path_prefix: /api/images}\n"
        "    primary: legacy\n"
        "    candidate: new\n"
        "    rollout: {percent: 100}\n"
    )


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Load:
    """Clients posting to the images route without pause; what each got, and whether a half-written file
    was on disk when it was sent."""

    url: str
    partial_on_disk: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[int, str, bool]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def client(self) -> None:
        timeout = aiohttp.ClientTimeout(total=WAIT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.stop.is_set():
                during = self.partial_on_disk.is_set()
                async with session.post(f"{self.url}/api/images", data=BODY) as response:
                    body = await response.json()
                    side = body["served_by"] if "served_by" in body else body["error"]["code"]
                    self.seen.append((response.status, side, during))


def edit(path: Path, text: str, load: Load) -> None:
    """Truncate, write up to the cut, pause, write the rest: what an editor that saves in place does."""
    cut = text.index(CUT) + len(CUT)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text[:cut])
        handle.flush()
        load.partial_on_disk.set()
        time.sleep(PAUSE_S)
        handle.write(text[cut:])
        handle.flush()
        load.partial_on_disk.clear()
    time.sleep(BETWEEN_S)


async def test_zero_partial_configs_are_applied_in_20_truncate_then_write_edits_under_load(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> None:
    urls = {name: url_of(await aiohttp_server(upstream_app(Recorder(name)))) for name in ("legacy", "new")}
    texts = [routes_text(i, urls) for i in range(EDITS + 1)]
    half = parse_config(texts[1][: texts[1].index(CUT) + len(CUT)])
    assert (half.routes, half.limits.max_body_bytes) == ([], 10)  # the hazard is real: it parses
    config = tmp_path / "routes.yaml"
    config.write_text(texts[0], encoding="utf-8")

    async with serve_proxy(config) as proxy:  # the default settle time, 2 s
        load = Load(proxy.url)
        clients = [asyncio.ensure_future(load.client()) for _ in range(4)]
        try:
            for first in range(1, EDITS + 1, GROUP):
                for number in range(first, first + GROUP):
                    await asyncio.to_thread(edit, config, texts[number], load)
                await proxy.wait_for_log("config_reloaded", sha256=sha(texts[first + GROUP - 1]))
        finally:
            load.stop.set()
            await asyncio.wait_for(asyncio.gather(*clients), WAIT_S)
        assert {(status, side) for status, side, _ in load.seen} == {(200, "new")}
        assert any(during for _, _, during in load.seen)  # the traffic did meet the half-written states
        await assert_only_whole_files_were_applied(proxy, {sha(text) for text in texts[1:]})


async def assert_only_whole_files_were_applied(proxy: Served, whole: set[str]) -> None:
    applied = [line["sha256"] for line in proxy.logged("config_reloaded")]
    assert len(applied) == EDITS // GROUP
    assert set(applied) <= whole
    assert proxy.logged("config_reload_failed") == []  # nothing partial was even tried
    assert await proxy.metric("strangler_config_reloads_total", result="failure") == 0
    assert await proxy.metric("strangler_config_watch_events_total", event="settled") == len(applied)
    # The watcher did look at states that never went live: some half-written, some whole but soon edited.
    assert await proxy.metric("strangler_config_watch_events_total", event="superseded") >= 1
