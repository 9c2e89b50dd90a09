"""A real Prometheus (Debian's `prometheus`) scrapes the stack as `make run` starts it; every PromQL
expression of the Grafana dashboard and of the alert rules must be valid and return data.

The stack runs with a routes file written here: a partial rollout and shadowing of the images route,
a candidate that is overloaded and slow (so errors, mismatches, drops and latency differ by role), a
dead candidate behind a fallback (fallbacks, connect errors, an open breaker) and one behind a guard
(the guard trips), and a last edit that fails to load. So every panel and every alert has something
to show: a panel that shows nothing is a bug, and so is an alert that cannot fire on the real metrics.
The rollout controller's panels, annotations and alert are shown with data by test_progressive.py,
which runs a controller; this stack has none.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bench.traffic import Plan
from bench.traffic import run as demo_traffic
from tests.deploy.queries import CONTROLLER_METRICS, Query, alert_queries, dashboard_queries, substitute
from tests.deploy.tools import DEPLOY, tool
from tests.e2e.conftest import REPO, Stack, free_port, running_stack, wait_until_up

TOKEN = "prometheus-e2e-token"
SCRAPE_S = 1.0
ROUNDS = 5
ROUND_GAP_S = 1.5  # > the scrape interval: counters must grow between scrapes for rate() to see it
DEADLINE_S = 60.0


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def routes_for_test(ports: dict[str, int]) -> dict[str, Any]:
    """The shipped routes.yaml (its shadow compare policy included), widened to exercise every panel."""
    config = yaml.safe_load((REPO / "routes.yaml").read_text())
    config["upstreams"]["legacy"]["url"] = f"http://127.0.0.1:{ports['legacy']}"
    config["upstreams"]["imageservice"]["url"] = f"http://127.0.0.1:{ports['imageservice']}"
    ghost = f"http://127.0.0.1:{ports['ghost']}"  # nothing listens there: connection refused
    config["upstreams"]["ghost"] = {"url": ghost, "connect_timeout_s": 1, "timeout_s": 2}
    (images,) = [route for route in config["routes"] if route["name"] == "images"]
    images["rollout"]["percent"] = 50
    images["shadow"]["percent"] = 100
    images["shadow"]["max_in_flight"] = 2  # a burst of primary POSTs drops shadow copies
    for block in ("fallback", "guard"):  # the candidate's 5xx must reach the client and stay on
        images.pop(block, None)
    ghost_route = {
        "primary": "legacy",
        "candidate": "ghost",
        "rollout": {"percent": 50, "sticky_key": ["header:X-User-Id"], "on_missing_key": "primary"},
    }
    config["routes"] += [
        {
            "name": "catalog",
            "match": {"path_prefix": "/api/catalog", "methods": ["GET"]},
            **ghost_route,
            "flags": [{"header": "X-Catalog-Backend", "equals": "new", "use": "candidate"}],
            "fallback": {"when": ["connect_error", "timeout", "5xx"]},
        },
        {
            "name": "orders",
            "match": {"path_prefix": "/api/orders", "methods": ["GET"]},
            **ghost_route,
            "flags": [
                {"header": "X-Orders-Backend", "equals": "new", "use": "candidate"},
                {"header": "X-Orders-Backend", "equals": "old", "use": "primary"},
            ],
            "guard": {"max_error_rate": 0.2, "min_requests": 6, "window_s": 60},
        },
    ]
    return config


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus-e2e")


@pytest.fixture(scope="module")
def stack(tmp: Path) -> Iterator[Stack]:
    ports = {name: free_port() for name in ("legacy", "imageservice", "proxy", "admin", "ghost")}
    extra_env = {
        # One generation at a time, none queued, each slow: concurrent candidate calls get 503.
        "IMAGESERVICE_MAX_CONCURRENCY": "1",
        "IMAGESERVICE_MAX_QUEUE": "0",
        "IMAGESERVICE_LOCAL_DELAY_S": "0.5",
        "STRANGLER_ADMIN_TOKEN": TOKEN,
    }
    routes_text = yaml.safe_dump(routes_for_test(ports), sort_keys=False)
    with running_stack(tmp, ports, routes_text, extra_env) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp: Path) -> Iterator[Prometheus]:
    """The shipped prometheus.yml and alerts.yml; only targets, intervals and paths differ."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_S:g}s", evaluation_interval=f"{SCRAPE_S:g}s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / name) for name in config["rule_files"]]
    targets = {"proxy": stack.admin, "imageservice": stack.imageservice, "legacy": stack.legacy}
    # The rollout controller's job has no target here: tests/e2e/test_progressive.py scrapes one.
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [targets[job["job_name"]].removeprefix("http://")]
    config_file = tmp / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={config_file}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/-/ready", process, deadline_s=DEADLINE_S)
        yield Prometheus(process=process, url=f"http://127.0.0.1:{port}", log=log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


async def api(session: aiohttp.ClientSession, prometheus: Prometheus, path: str, **params: str) -> Any:
    async with session.get(f"{prometheus.url}/api/v1/{path}", params=params) as response:
        body = await response.json()
    assert body["status"] == "success", f"{path} {params}: {body}"
    return body["data"]


async def wait_for_scrapes(session: aiohttp.ClientSession, prometheus: Prometheus, after: float) -> None:
    """Until every job has a sample newer than `after` (bounded)."""
    give_up = time.monotonic() + DEADLINE_S
    while time.monotonic() < give_up:
        data = await api(session, prometheus, "query", query="timestamp(up == 1)")
        fresh = {r["metric"]["job"] for r in data["result"] if float(r["value"][1]) > after}
        if fresh >= {"proxy", "imageservice", "legacy"}:
            return
        await asyncio.sleep(SCRAPE_S / 2)
    raise AssertionError(f"Prometheus did not scrape all three jobs; see {prometheus.log}")


async def send(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> int:
    async with session.request(method, url, **kwargs) as response:
        await response.read()
        return response.status


async def one_round(session: aiohttp.ClientSession, proxy: str, round_no: int) -> list[int]:
    """Each round: candidate bursts, primary POSTs (compared, then a burst that drops), dead candidates."""
    prompt = {"prompt": f"a lighthouse, round {round_no}", "size": "256x256"}
    new = {"X-Images-Backend": "new"}
    old = {"Cookie": "images_backend=old"}
    statuses = []
    # The candidate runs one generation at a time and queues none: of three at once, two get 503.
    burst = [send(session, "POST", f"{proxy}/api/images", json=prompt, headers=new) for _ in range(3)]
    candidate_busy = asyncio.gather(*burst)
    await asyncio.sleep(0.1)  # (only shapes the mix: a late burst makes matches instead of mismatches)
    # Served by the monolith one after the other, while the candidate is busy: each shadow copy is
    # compared, and the candidate's 503 against the monolith's 201 is a mismatch.
    for _ in range(3):
        statuses.append(await send(session, "POST", f"{proxy}/api/images", json=prompt, headers=old))
    statuses += await candidate_busy
    # A burst larger than the shadow pool (max_in_flight 2): copies are dropped.
    statuses += await asyncio.gather(*(send(session, "POST", f"{proxy}/api/images", json=prompt, headers=old)
                                       for _ in range(6)))  # fmt: skip
    # The dead candidates: catalog falls back to the monolith, orders has no fallback but a guard.
    for _ in range(3):
        for path, header, value in (
            ("/api/catalog", "X-Catalog-Backend", "new"),
            ("/api/orders/ord_x", "X-Orders-Backend", "new"),
            ("/api/orders/ord_x", "X-Orders-Backend", "old"),
        ):
            statuses.append(await send(session, "GET", f"{proxy}{path}", headers={header: value}))
    # And what a storefront sees: pages, orders, generations and downloads from many users.
    report = await demo_traffic(Plan(target=proxy, rate=40, duration_s=0.5, seed=round_no, concurrency=8))
    assert report.unanswered == 0, report.lines()
    return statuses


async def drive(stack: Stack, prometheus: Prometheus) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await wait_for_scrapes(session, prometheus, after=time.time())
        for round_no in range(ROUNDS):
            started = time.monotonic()
            statuses = await one_round(session, stack.proxy, round_no)
            assert 0 not in statuses
            await asyncio.sleep(max(0.0, ROUND_GAP_S - (time.monotonic() - started)))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert await send(session, "POST", f"{stack.admin}/reload", headers=auth) == 200
        # The last edit is broken: the proxy refuses it and keeps serving (the reload alert fires).
        stack.routes_file.write_text(stack.routes_file.read_text().replace("percent: 50", "percent: 500", 1))
        assert await send(session, "POST", f"{stack.admin}/reload", headers=auth) != 200
        await wait_for_scrapes(session, prometheus, after=time.time() + SCRAPE_S)


def has_data(data: dict[str, Any]) -> bool:
    if data["resultType"] == "scalar":
        return math.isfinite(float(data["result"][1]))
    return any(math.isfinite(float(series["value"][1])) for series in data["result"])


async def test_every_dashboard_panel_and_every_alert_shows_data_from_the_real_stack(
    stack: Stack, prometheus: Prometheus
) -> None:
    await drive(stack, prometheus)
    empty: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        queries: list[Query] = [*dashboard_queries(), *alert_queries()]
        assert len(queries) > 20
        for query in queries:
            if query.metrics() <= CONTROLLER_METRICS:  # shown with data by tests/e2e/test_progressive.py
                continue
            data = await api(session, prometheus, "query", query=substitute(query.expr, rate_interval="1m"))
            if not has_data(data):
                empty.append(f"{query.source}: {' '.join(query.expr.split())}")
        match = {"match[]": "strangler_requests_total"}
        routes = await api(session, prometheus, "label/route/values", **match)
        rules = await api(session, prometheus, "rules", type="alert")
    assert not empty, "no data for:\n" + "\n".join(empty)
    assert {"images", "catalog", "orders"} <= set(routes)  # the dashboard's $route variable
    evaluated = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(evaluated) == len(alert_queries())
    assert all(rule["health"] == "ok" for rule in evaluated), evaluated
