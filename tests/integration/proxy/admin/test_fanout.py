"""The parent's admin listener under --workers N, in process: real worker apps (create_app and their admin
app, as a worker serves them) on unix sockets, and the fan-out app in front of them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from proxy.admin.api import ADMIN_API
from proxy.admin.app import create_admin_app
from proxy.admin.fanout import FAN_RULES, create_fanout_app
from proxy.app import create_app
from proxy.config import load_config
from proxy.console.figures import NAMES, Traffic, read, tally
from proxy.metrics import WorkersMetrics
from tests.integration.proxy.conftest import closed_port, config_dict, images_route, url_of, write_config
from tests.integration.proxy.listener_server import ListenerTestServer

TOKEN = {"Authorization": "Bearer s3cret"}
Client = TestClient[web.Request, web.Application]


@dataclass
class Worker:
    app: web.Application
    registry: CollectorRegistry
    public: Client
    admin: web.AppRunner

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@dataclass
class Roster:
    paths: list[str]
    generations: list[int] = field(default_factory=list)

    def sockets(self) -> list[str]:
        return self.paths

    def generation(self, index: int) -> int:
        return self.generations[index]

    def describe(self) -> list[dict[str, Any]]:
        return [{"worker": i, "restarts": g - 1} for i, g in enumerate(self.generations)]


@dataclass
class Fleet:
    workers: list[Worker]
    roster: Roster
    parent: Client
    metrics: WorkersMetrics
    start: Callable[[int, Path], Awaitable[Worker]]

    async def replace(self, index: int, config: Path) -> None:
        """Worker `index` dies and a new process takes its socket, as the supervisor does it."""
        await self.workers[index].admin.cleanup()
        self.roster.generations[index] += 1
        self.workers[index] = await self.start(index, config)

    async def metric(self, name: str, **labels: str) -> float:
        response = await self.parent.get("/metrics")
        assert response.status == 200
        return value(await response.text(), name, **labels)


def value(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.fixture
async def fleet(
    tmp_path: Path, upstreams: Any, aiohttp_client: Callable[..., Awaitable[Client]]
) -> AsyncIterator[Callable[..., Awaitable[Fleet]]]:
    private = tempfile.mkdtemp(prefix="fan-")  # short: a unix socket path holds 107 bytes
    runners: list[web.AppRunner] = []

    async def start(index: int, config: Path) -> Worker:
        registry = CollectorRegistry()
        app = create_app(load_config(config), registry=registry, admin_token="s3cret", watch_interval_s=None)
        public = await aiohttp_client(ListenerTestServer(app))
        runner = web.AppRunner(create_admin_app(app, private=True))
        await runner.setup()
        await web.UnixSite(runner, f"{private}/worker-{index}.sock").start()
        runners.append(runner)
        return Worker(app, registry, public, runner)

    async def make(*configs: Path, admin_token: str | None = "s3cret") -> Fleet:  # noqa: S107 - a test token
        workers = [await start(i, config) for i, config in enumerate(configs)]
        roster = Roster([f"{private}/worker-{i}.sock" for i in range(len(configs))], [1] * len(configs))
        metrics = WorkersMetrics(CollectorRegistry())
        parent = await aiohttp_client(create_fanout_app(roster, metrics, admin_token=admin_token))
        return Fleet(workers, roster, parent, metrics, start)

    yield make
    for runner in runners:
        await runner.cleanup()
    shutil.rmtree(private, ignore_errors=True)


def images_config(tmp_path: Path, upstreams: Any, percent: float = 100, name: str = "routes.yaml",
                  **route: Any) -> Path:  # fmt: skip
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    return write_config(tmp_path / name, config_dict(urls, routes=[images_route(percent, **route)]))


async def test_metrics_sum_every_worker_and_keep_a_replaced_workers_counts(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    config = images_config(tmp_path, upstreams)
    f = await fleet(config, config)
    for worker, n in zip(f.workers, (2, 3), strict=True):
        for _ in range(n):
            assert (await worker.public.get("/api/images")).status == 200

    assert await f.metric("strangler_requests_total", route="images") == 5
    assert await f.metric("strangler_workers_scrape_errors_total") == 0

    await f.replace(1, config)  # its 3 requests die with it; the sum must not go back
    assert await f.metric("strangler_requests_total", route="images") == 5
    await f.workers[1].public.get("/api/images")
    assert await f.metric("strangler_requests_total", route="images") == 6
    assert await f.metric("strangler_rollout_percent", route="images") == 100  # a gauge: max, not summed


async def test_a_worker_that_does_not_answer_is_said_everywhere_and_its_last_counts_stand_in(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    config = images_config(tmp_path, upstreams)
    f = await fleet(config, config)
    await f.workers[1].public.get("/api/images")
    assert await f.metric("strangler_requests_total", route="images") == 1
    await f.workers[1].admin.cleanup()  # hung or gone, same generation: not replaced yet

    exposition = await (await f.parent.get("/metrics")).text()
    assert value(exposition, "strangler_requests_total", route="images") == 1
    assert value(exposition, "strangler_workers_scrape_errors_total") == 1
    assert (await f.parent.get("/healthz")).status == 503
    response = await f.parent.post("/reload", headers=TOKEN)
    body = await response.json()
    assert response.status == 502
    assert body["error"]["code"] == "worker_unreachable"
    assert [w["status"] for w in body["error"]["workers"]] == [200, None]


async def test_the_families_the_console_reads_are_what_the_merged_exposition_says_of_them(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    config = images_config(tmp_path, upstreams, percent=50)
    f = await fleet(config, config)
    api = f.parent.app[ADMIN_API]

    async def requests(worker: int, n: int) -> None:
        for i in range(n):
            response = await f.workers[worker].public.get("/api/images", headers={"X-User-Id": f"u{i}"})
            assert response.status == 200

    async def families() -> Traffic:
        return tally(await api.families(NAMES))

    async def exposition() -> Traffic:
        return read(await (await f.parent.get("/metrics")).text())

    def answered(traffic: Traffic) -> int:
        return sum(traffic.side("images", role).requests for role in ("primary", "candidate"))

    await requests(0, 2)
    await requests(1, 3)
    assert answered(await families()) == 5
    assert await families() == await exposition()

    await requests(1, 1)
    assert answered(await families()) == 6  # what the families said is what a replaced worker leaves
    await f.replace(1, config)
    assert answered(await families()) == 6
    assert await families() == await exposition()

    await f.workers[0].admin.cleanup()  # not answering: its last counts stand in
    assert answered(await families()) == 6
    assert f.metrics.registry.get_sample_value("strangler_workers_scrape_errors_total") == 1


async def test_reload_through_the_parent_reaches_every_worker_or_says_which_refused(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    config = images_config(tmp_path, upstreams, percent=10)
    f = await fleet(config, config)
    images_config(tmp_path, upstreams, percent=50)

    response = await f.parent.post("/reload", headers=TOKEN)
    body = await response.json()
    assert response.status == 200
    assert body["changed"] is True
    assert [w["changed"] for w in body["workers"]] == [True, True]
    assert [w.sample("strangler_config_reloads_total", result="success") for w in f.workers] == [1, 1]
    assert [w.sample("strangler_rollout_percent", route="images") for w in f.workers] == [50, 50]

    config.write_text("version: 2\n")
    response = await f.parent.post("/reload", headers=TOKEN)
    body = await response.json()
    assert response.status == 422  # both refused alike: their answer, as one worker gives it
    assert body["error"]["code"] == "invalid_config"


async def test_routes_sum_the_counts_and_a_guard_reset_reaches_every_worker(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    urls = {"legacy": url_of(upstreams["legacy"][0]), "new": f"http://127.0.0.1:{closed_port()}"}
    guard = {"max_error_rate": 0.5, "min_requests": 2, "window_s": 600}
    doc = config_dict(urls, routes=[images_route(100, guard=guard)])
    doc["upstreams"]["new"]["circuit"] = {"failures": 1000}
    config = write_config(tmp_path / "routes.yaml", doc)
    f = await fleet(config, config)
    for _ in range(2):  # worker 0's candidate fails twice: its guard trips, worker 1's does not
        await (await f.workers[0].public.get("/api/images")).read()
    await (await f.workers[1].public.get("/elsewhere")).read()

    body = await (await f.parent.get("/routes", headers=TOKEN)).json()
    (images,) = body["routes"]
    assert images["requests"] == {"primary": 0, "candidate": 2}
    assert images["guard"]["tripped"] is True
    assert images["guard"]["tripped_workers"] == [0]
    assert body["default"]["requests"] == 1

    response = await f.parent.post("/routes/images/guard/reset", headers=TOKEN)
    assert await response.json() == {"route": "images", "was_tripped": True, "tripped": False,
                                      "workers": [True, False]}  # fmt: skip
    assert [w.sample("strangler_guard_tripped", route="images") for w in f.workers] == [0, 0]
    missing = await f.parent.post("/routes/nothing/guard/reset", headers=TOKEN)
    assert (missing.status, (await missing.json())["error"]["code"]) == (404, "unknown_route")


async def test_workers_that_serve_different_configs_are_a_conflict_not_a_merge(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    f = await fleet(*(images_config(tmp_path, upstreams, n, f"{n}.yaml") for n in (10, 20)))

    response = await f.parent.get("/config", headers=TOKEN)
    body = await response.json()
    assert response.status == 409
    assert body["error"]["code"] == "workers_disagree"
    assert len({w["sha256"] for w in body["error"]["workers"]}) == 2


async def test_the_parent_checks_the_token_itself_and_counts_what_it_refuses(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    config = images_config(tmp_path, upstreams)
    f = await fleet(config, config)
    assert (await f.parent.get("/workers")).status == 401
    assert (await f.parent.post("/reload", headers={"Authorization": "Bearer wrong"})).status == 401
    assert await f.metric("strangler_admin_auth_failures_total", reason="missing") == 1
    assert await f.metric("strangler_admin_auth_failures_total", reason="wrong") == 1
    assert [w.sample("strangler_config_reloads_total", result="success") for w in f.workers] == [0, 0]
    assert (await f.parent.get("/workers", headers=TOKEN)).status == 200

    closed = await fleet(config, admin_token=None)
    assert (await closed.parent.get("/routes", headers=TOKEN)).status == 403


async def test_a_bad_parameter_every_worker_refuses_is_answered_as_one_worker_would(
    fleet: Callable[..., Awaitable[Fleet]], tmp_path: Path, upstreams: Any
) -> None:
    config = images_config(tmp_path, upstreams)
    f = await fleet(config, config)

    response = await f.parent.get("/shadow/mismatches?limit=0", headers=TOKEN)
    assert (response.status, (await response.json())["error"]["code"]) == (400, "invalid_parameter")
    response = await f.parent.get("/shadow/mismatches?limit=5", headers=TOKEN)
    assert (await response.json())["mismatches"] == []
    response = await f.parent.post("/shadow/noise/reset", headers=TOKEN)
    assert response.status == 400


def test_every_admin_endpoint_of_a_worker_has_a_fan_out_rule_and_a_route_in_the_parent() -> None:
    def endpoints(app: web.Application) -> set[str]:
        return {f"{r.method} {r.resource.canonical}" for r in app.router.routes()
                if r.method != "HEAD" and r.resource is not None}  # fmt: skip

    worker = create_admin_app(create_app(load_config(Path(__file__).parents[4] / "routes.yaml")))
    parent = create_fanout_app(Roster([]), WorkersMetrics(CollectorRegistry()), admin_token=None)

    assert endpoints(worker) == set(FAN_RULES)
    assert endpoints(parent) == endpoints(worker) | {"GET /workers"}
