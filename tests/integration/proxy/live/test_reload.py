"""Live reload: edits, symlink swaps and admin requests swap a valid table in; a bad one changes nothing."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.config.settle import Seen
from proxy.dataplane.keys import METRICS, STORE
from proxy.live.watch import watch
from tests.integration.proxy.conftest import (
    WAIT_S,
    Proxy,
    ProxyFactory,
    config_dict,
    images_route,
    url_of,
    write_config,
)

TOKEN = {"Authorization": "Bearer s3cret"}


def _doc(upstreams: dict[str, Any], percent: float) -> dict[str, Any]:
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    return config_dict(urls, routes=[images_route(percent)])


async def _served_by(proxy: Proxy) -> str:
    response = await proxy.client.get("/api/images")
    return (await response.json())["served_by"]  # type: ignore[no-any-return]


async def _until(predicate: Any, what: str) -> None:
    """Poll a condition, bounded in time; the bound is a deadline, not the thing under test."""
    for _ in range(int(WAIT_S / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


async def test_an_edited_file_is_picked_up_by_the_watcher(
    make_proxy: ProxyFactory, upstreams: Any, tmp_path: Path
) -> None:
    proxy = await make_proxy(_doc(upstreams, 0), watch_interval_s=0.05)
    assert await _served_by(proxy) == "legacy"
    write_config(proxy.config_path, _doc(upstreams, 100))

    async def switched() -> bool:
        return await _served_by(proxy) == "new"

    await _until(switched, "the edit to be served")
    assert proxy.sample("strangler_config_reloads_total", result="success") == 1
    assert proxy.sample("strangler_rollout_percent", route="images") == 100
    assert proxy.sample("strangler_config_last_reload_successful") == 1


async def test_a_configmap_style_symlink_swap_is_picked_up(
    make_proxy: ProxyFactory, upstreams: Any, tmp_path: Path
) -> None:
    # Kubernetes: routes.yaml -> ..data/routes.yaml, ..data -> ..v1; an update re-points ..data atomically.
    volume = tmp_path / "volume"
    for version, percent in (("..v1", 0), ("..v2", 100)):
        (volume / version).mkdir(parents=True)
        write_config(volume / version / "routes.yaml", _doc(upstreams, percent))
    (volume / "..data").symlink_to("..v1")
    (volume / "routes.yaml").symlink_to("..data/routes.yaml")
    proxy = await make_proxy({}, config_path=volume / "routes.yaml", watch_interval_s=0.05)
    assert await _served_by(proxy) == "legacy"

    (volume / "..data_tmp").symlink_to("..v2")
    os.replace(volume / "..data_tmp", volume / "..data")

    async def switched() -> bool:
        return await _served_by(proxy) == "new"

    await _until(switched, "the swapped symlink to be served")


async def test_an_invalid_edit_is_kept_out_and_the_metrics_say_so(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, 0), watch_interval_s=0.05)
    serving = proxy.app  # the public app keeps the same store
    broken = _doc(upstreams, 0)
    broken["routes"][0]["rollout"]["percent"] = 250

    async def failed() -> bool:
        return proxy.sample("strangler_config_reloads_total", result="failure") == 1

    with capture_logs() as logs:
        write_config(proxy.config_path, broken)
        await _until(failed, "the failed reload to be counted")
    [logged] = [line for line in logs if line["event"] == "config_reload_failed"]
    assert logged["log_level"] == "error"
    assert logged["errors"] == [
        f"{proxy.config_path}:20: routes[0].rollout.percent: must be between 0 and 100"
    ]
    assert proxy.sample("strangler_config_last_reload_successful") == 0
    assert proxy.sample("strangler_rollout_percent", route="images") == 0
    assert await _served_by(proxy) == "legacy"
    await asyncio.sleep(0.2)  # several more polls of the same broken file ...
    assert proxy.sample("strangler_config_reloads_total", result="failure") == 1  # ... count once
    assert serving is proxy.app

    write_config(proxy.config_path, _doc(upstreams, 100))

    async def recovered() -> bool:
        return await _served_by(proxy) == "new"

    await _until(recovered, "the fixed file to be served")
    assert proxy.sample("strangler_config_last_reload_successful") == 1


async def test_admin_reload_swaps_a_valid_file_and_reports_an_invalid_one(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, 0))  # no watcher: only the admin request reloads
    write_config(proxy.config_path, _doc(upstreams, 100))
    response = await proxy.admin.post("/reload", headers=TOKEN)
    body = await response.json()
    assert (response.status, body["ok"], body["changed"]) == (200, True, True)
    assert await _served_by(proxy) == "new"

    response = await proxy.admin.post("/reload", headers=TOKEN)  # unchanged: still a success
    assert (await response.json())["changed"] is False
    assert proxy.sample("strangler_config_reloads_total", result="success") == 2

    proxy.config_path.write_text("version: 1\nupstreams: {}\nbogus: true\n", encoding="utf-8")
    response = await proxy.admin.post("/reload", headers=TOKEN)
    body = await response.json()
    assert response.status == 422
    assert body["error"]["code"] == "invalid_config"
    assert body["error"]["errors"]
    assert all(line.startswith(f"{proxy.config_path}:") for line in body["error"]["errors"])
    assert any("bogus" in line for line in body["error"]["errors"])
    assert await _served_by(proxy) == "new"
    assert proxy.sample("strangler_config_reloads_total", result="failure") == 1
    assert proxy.sample("strangler_config_last_reload_successful") == 0


async def test_a_removed_route_and_upstream_go_away_while_an_in_flight_request_still_finishes(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, 100))
    legacy_server, _ = upstreams["legacy"]
    _, new = upstreams["new"]
    in_flight = asyncio.ensure_future(proxy.client.get("/api/images/hold"))
    await asyncio.wait_for(new.entered.wait(), WAIT_S)  # /api/images/hold -> candidate, held there

    # The route and the candidate upstream both go: its session is retired, not cut under the request.
    write_config(proxy.config_path, config_dict({"legacy": url_of(legacy_server)}, routes=[]))
    response = await proxy.admin.post("/reload", headers=TOKEN)
    assert (await response.json())["changed"] is True
    assert proxy.registry.get_sample_value("strangler_rollout_percent", {"route": "images"}) is None
    assert await _served_by(proxy) == "legacy"

    new.release.set()
    finished = await asyncio.wait_for(in_flight, WAIT_S)
    assert finished.status == 200
    assert (await finished.json())["served_by"] == "new"


async def test_repointing_an_upstream_under_load_loses_no_request(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    legacy_server, _ = upstreams["legacy"]
    new_server, new = upstreams["new"]
    proxy = await make_proxy(_doc(upstreams, 100))
    held = [asyncio.ensure_future(proxy.client.get("/api/images/hold")) for _ in range(10)]
    await asyncio.wait_for(new.entered.wait(), WAIT_S)

    for round_ in range(6):  # "new" flips between the two servers; each flip retires a session
        target = legacy_server if round_ % 2 == 0 else new_server
        urls = {"legacy": url_of(legacy_server), "new": url_of(target)}
        doc = config_dict(urls, routes=[images_route(100)])
        write_config(proxy.config_path, doc)
        assert (await (await proxy.admin.post("/reload", headers=TOKEN)).json())["ok"] is True
        burst = await asyncio.gather(*(proxy.client.get(f"/api/images/{i}") for i in range(20)))
        assert [r.status for r in burst] == [200] * 20

    new.release.set()
    finished = await asyncio.wait_for(asyncio.gather(*held), WAIT_S)
    assert [r.status for r in finished] == [200] * 10
    assert proxy.sample("strangler_config_reloads_total", result="success") == 6


async def test_a_file_renamed_into_place_goes_live_at_once_without_waiting_to_settle(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, 0), watch_interval_s=0.05)  # settle time: the default 2 s
    staged = write_config(proxy.config_path.with_name("routes.yaml.new"), _doc(upstreams, 100))
    os.utime(staged, (1_000_000_000, 1_000_000_000))  # written (and validated) well before the rename
    os.replace(staged, proxy.config_path)

    async def switched() -> bool:
        return await _served_by(proxy) == "new"

    await _until(switched, "the renamed file to be served")
    assert proxy.sample("strangler_config_watch_events_total", event="renamed") == 1
    assert proxy.sample("strangler_config_watch_events_total", event="settled") == 0


async def test_an_fd_shortage_is_said_as_such_never_as_an_unreadable_file(
    make_proxy: ProxyFactory, upstreams: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await make_proxy(_doc(upstreams, 0))
    store, metrics = proxy.app[STORE], proxy.app[METRICS]
    failure = OSError(errno.EMFILE, "Too many open files")

    def reader(path: str) -> Seen:
        raise failure

    async def counted(event: str) -> bool:
        return proxy.sample("strangler_config_watch_events_total", event=event) >= 1

    with capture_logs() as logs:
        task = asyncio.ensure_future(watch(store, interval_s=0.01, metrics=metrics, reader=reader))
        try:
            await _until(lambda: counted("fd_shortage"), "the fd shortage to be counted")
            await asyncio.sleep(0.1)  # more polls, still out of descriptors: said once
            failure = OSError(errno.ENOENT, "No such file or directory")
            await _until(lambda: counted("unreadable"), "the missing file to be counted")
        finally:
            task.cancel()
        monkeypatch.setattr(Path, "read_bytes", lambda self: reader(str(self)))
        failure = OSError(errno.ENFILE, "Too many open files in system")
        result = await store.reload("admin")
    events = [line["event"] for line in logs]
    assert events.count("config_watch_fd_shortage") == 1
    assert events.count("config_file_unreadable") == 1
    assert proxy.sample("strangler_config_watch_events_total", event="fd_shortage") == 1
    [shortage] = [line for line in logs if line["event"] == "config_watch_fd_shortage"]
    assert shortage["log_level"] == "error"
    assert "ulimit -n" in shortage["detail"]
    assert not result.ok
    [failed] = [line for line in logs if line["event"] == "config_reload_failed"]
    assert failed["cause"] == "fd_shortage"
    assert "file descriptors" in result.errors[0]


async def test_a_watched_content_that_changed_again_before_it_was_read_is_not_applied(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, 0))
    write_config(proxy.config_path, _doc(upstreams, 100))
    result = await proxy.app[STORE].reload("watch", expect_sha256="0" * 64)  # what the watcher had settled
    assert (result.ok, result.changed, result.stale) == (True, False, True)
    assert await _served_by(proxy) == "legacy"
    assert proxy.sample("strangler_config_reloads_total", result="success") == 0
    assert proxy.sample("strangler_config_reloads_total", result="failure") == 0
