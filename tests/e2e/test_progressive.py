"""Progressive delivery on real processes (issue 15): Debian's Prometheus scrapes two proxy replicas (one
routes file, its watcher on) and the rollout controller (`python -m proxy.controller run`), with a primary
and a candidate fake upstream and steady traffic from this test to both replicas. One run, five routes
side by side, one scenario each (interval_s 5, a 1 s scrape):

  healthy  the candidate is stepped 0 -> 25 -> 50 -> 100 and the rollout succeeds               (a)
  errors   the candidate answers 500 from the second step on: aborted, both replicas at 0 %    (b)
  slow     the candidate answers twice as slowly: aborted on latency                           (c)
  noisy    the healthy candidate with one error in 40 requests: not aborted                    (d)
  paused   waits at a `pause` step; the controller is SIGKILLed there and restarted: it resumes (e)
           at its step; promoted with the CLI; then the operator's file is made invalid: the
           controller refuses to write it and says so, and goes on once it is fixed           (f)

The run is one module fixture; each test asserts what it recorded. Every wait is bounded (a deadline,
never what is asserted, except the issue's own "within two intervals plus the reload delay"); every
process started here is stopped, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from proxy.config import parse_config
from proxy.rollout.yamledit import read_percent
from tests.deploy.queries import CONTROLLER_METRICS, dashboard_queries, substitute
from tests.deploy.tools import DEPLOY, tool
from tests.e2e.conftest import REPO, free_port
from tests.faults.proxy_process import TOKEN, Served, serve_proxy

INTERVAL_S = 5.0
SCRAPE_S = 1.0
RELOAD_S = 0.5  # the proxies' watcher looks every 0.5 s and applies a renamed file at once
# The controller's figures lag by up to one scrape, its analysis and the replicas' look take a moment.
SLACK_S = 2 * SCRAPE_S + 1.0
WITHIN_S = 2 * INTERVAL_S + RELOAD_S + SLACK_S  # the "two intervals plus the reload delay"
RATE = 20.0  # requests per second per route, over both replicas
ENV = {**os.environ, "STRANGLER_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
DEADLINE_S = 75.0  # for everything to settle; a bound, never asserted
ROUTES = ("healthy", "errors", "slow", "noisy", "paused")
STEPS = {route: "[25, 50, 100]" for route in ROUTES} | {"paused": "[25, 50, pause, 75, 100]"}
# The slow route's answers stay inside one histogram bucket each ((0.25, 0.5] and (0.5, 1]) even with up
# to 200 ms of scheduling delay on a busy machine; the other routes answer in 10 ms.
DELAY_S = {("primary", "slow"): 0.3, ("candidate", "slow"): 0.6}


def routes_text(primary: int, candidate: int) -> str:
    head = f"""\
# The progressive-delivery test's routes: one route per scenario, one primary and one candidate.
# The controller may change each `percent` and nothing else: comments and order must survive.
version: 1
upstreams:
  legacy: {{url: "http://127.0.0.1:{primary}"}}     # the monolith
  new:    {{url: "http://127.0.0.1:{candidate}"}}   # the extracted service
default_upstream: legacy
routes:
"""
    return head + "".join(f"""\
  - name: {route}
    match: {{path_prefix: /{route}}}
    primary: legacy
    candidate: new
    rollout:
      percent: 0        # the controller moves this
      sticky_key: ["header:X-User-Id"]
    progressive:
      steps: {STEPS[route]}
      interval_s: {INTERVAL_S:g}
      min_requests: 10
      significance: 0.01   # one error among ~20 candidate requests is p ~ 0.04 at 25 %: not evidence
      checks:
        error_rate: {{max_increase: 0.01}}
        latency_p95: {{max_ratio: 1.5}}
""" for route in ROUTES)


@dataclass
class Upstreams:
    """The primary and the candidate, in this process; what the candidate answered, per route."""

    failing: set[str] = field(default_factory=set)  # routes whose candidate answers 500
    served: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def app(self, role: str) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            route = request.path.split("/")[1]
            await asyncio.sleep(DELAY_S.get((role, route), 0.01))
            if role == "candidate":
                self.served[route] += 1
                if route in self.failing or (route == "noisy" and self.served[route] % 40 == 0):
                    self.errors[route] += 1
                    return web.json_response({"error": "boom"}, status=500)
            return web.json_response({"served_by": role})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app


@dataclass
class Controller:
    process: asyncio.subprocess.Process
    url: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    def logged(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return said(self.lines, event, **fields)


def said(lines: list[dict[str, Any]], event: str, **fields: Any) -> list[dict[str, Any]]:
    """The log lines of `event` whose fields include `fields`."""
    return [line for line in lines
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())]  # fmt: skip


@dataclass
class Run:
    """What the run saw; the tests read it."""

    original: str = ""
    final: str = ""
    history: dict[str, list[float]] = field(default_factory=lambda: {route: [0.0] for route in ROUTES})
    errors_flipped_at: float | None = None  # when the errors route reached its second step
    errors_zero_at: float | None = None  # when both replicas served it at 0 %
    settled: dict[str, Any] | None = None  # /status once every scenario but (e)/(f) was done
    killed: int | None = None  # the controller's exit status after SIGKILL
    file_before_kill: str = ""
    file_after_restart: str = ""
    loaded: list[dict[str, Any]] = field(default_factory=list)  # rollout_loaded lines of the restart
    promoted: subprocess.CompletedProcess[str] | None = None
    invalid: str = ""
    file_while_invalid: str = ""
    refused: list[dict[str, Any]] = field(default_factory=list)
    said_invalid: list[dict[str, Any]] = field(default_factory=list)
    final_status: dict[str, Any] | None = None
    replicas: list[dict[str, float]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)  # both controllers' log lines
    queries_without_data: list[str] = field(default_factory=list)
    firing: set[str] = field(default_factory=set)
    candidate_errors: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def story(self) -> str:
        said = [f"{line.get('event')} {line.get('route', '')} {line.get('reason', '')}" for line in self.lines
                if str(line.get("event", "")).startswith(("rollout_", "prometheus_"))
                and line.get("event") != "rollout_analysis"]  # fmt: skip
        return "\n".join([*self.notes, *said[-40:]])


async def until(check: Callable[[], Awaitable[bool]], deadline_s: float, every_s: float = 0.2) -> bool:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        if await check():
            return True
        await asyncio.sleep(every_s)
    return False


async def get_json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as response:
        return await response.json()


async def phases(session: aiohttp.ClientSession, controller: Controller) -> dict[str, str]:
    try:
        status = await get_json(session, f"{controller.url}/status")
    except (aiohttp.ClientError, ValueError):
        return {}
    return {route["route"]: route["phase"] + (f":{route['paused_by']}" if route["paused_by"] else "")
            for route in status["routes"]}  # fmt: skip


@contextlib.asynccontextmanager
async def controller_process(routes: Path, prometheus: str, port: int, run: Run) -> AsyncIterator[Controller]:
    """`python -m proxy.controller run` until /healthz answers; its JSON log lines kept as they come."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.controller", "run", "--config", str(routes), "--prometheus", prometheus,
        "--listen", f"127.0.0.1:{port}", cwd=REPO, env=ENV, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    controller = Controller(process, f"http://127.0.0.1:{port}")

    async def collect() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "(not json)", "text": raw.decode(errors="replace")}
            controller.lines.append(line)
            run.lines.append(line)

    collecting = asyncio.ensure_future(collect())
    try:
        async with aiohttp.ClientSession() as session:

            async def up() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"the controller exited ({process.returncode}): {controller.lines}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{controller.url}/healthz") as response:
                        return response.status == 200
                return False

            assert await until(up, 30), f"the controller did not listen: {controller.lines[-5:]}"
        yield controller
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.wait_for(collecting, 10)


@contextlib.asynccontextmanager
async def prometheus_process(tmp: Path, replicas: list[Served], controller_port: int) -> AsyncIterator[str]:
    """The shipped prometheus.yml and alerts.yml: its proxy job on the two replicas, its rollout-controller
    job on the controller, the other jobs left out; a 1 s scrape and evaluation."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_S:g}s", evaluation_interval=f"{SCRAPE_S:g}s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / name) for name in config["rule_files"]]
    targets = {"proxy": [f"127.0.0.1:{r.admin_port}" for r in replicas],
               "rollout-controller": [f"127.0.0.1:{controller_port}"]}  # fmt: skip
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    for job in config["scrape_configs"]:
        job["static_configs"][0]["targets"] = targets[job["job_name"]]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log = free_port(), (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [tool("prometheus"), f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                assert process.poll() is None, f"prometheus exited; see {tmp / 'prometheus.log'}"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/-/ready") as response:
                        return response.status == 200
                return False

            assert await until(ready, 60), "Prometheus did not get ready"
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


async def traffic(
    session: aiohttp.ClientSession, replicas: list[Served], route: str, users: Iterator[int]
) -> None:
    """RATE requests a second to `route`, alternately on each replica, each from another user; never more
    than 40 at once (a slow answer delays the next ones, it does not pile them up)."""
    slots, pending = asyncio.Semaphore(40), set()

    async def one(url: str, user: int) -> None:
        try:
            async with session.get(url, headers={"X-User-Id": f"u{user}"}) as response:
                await response.read()
        except aiohttp.ClientError:
            pass
        finally:
            slots.release()

    start = time.monotonic()
    try:
        for n in itertools.count():
            await slots.acquire()
            task = asyncio.create_task(one(f"{replicas[n % 2].url}/{route}/item", next(users)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(max(0.0, start + (n + 1) / RATE - time.monotonic()))
    finally:  # stopped: no request of ours outlives the run
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def watch_file(routes: Path, upstreams: Upstreams, run: Run) -> None:
    """Every percent the file takes, per route; the errors route's candidate breaks at its second step.
    (A text is parsed once, when it changes: parsing is the costly part.)"""
    seen = ""
    while True:
        with contextlib.suppress(Exception):  # an invalid file: look again
            text = routes.read_text()
            if text == seen:
                await asyncio.sleep(0.1)
                continue
            seen = text
            config = parse_config(text)
            for route in ROUTES:
                percent = next(r.rollout.percent for r in config.routes if r.name == route and r.rollout)
                if percent != run.history[route][-1]:
                    run.history[route].append(percent)
                    if route == "errors" and percent == 50:
                        upstreams.failing.add("errors")
                        run.errors_flipped_at = time.monotonic()
        await asyncio.sleep(0.1)


async def replica_percents(replicas: list[Served]) -> list[dict[str, float]]:
    return [{route: await r.metric("strangler_rollout_percent", route=route) for route in ROUTES}
            for r in replicas]  # fmt: skip


async def script(tmp: Path, run: Run) -> None:
    upstreams = Upstreams()
    async with contextlib.AsyncExitStack() as stack:
        ports = []
        for role in ("primary", "candidate"):
            runner = web.AppRunner(upstreams.app(role))
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            ports.append(free_port())
            await web.TCPSite(runner, "127.0.0.1", ports[-1]).start()
        routes = tmp / "routes.yaml"
        routes.write_text(routes_text(*ports))
        run.original = routes.read_text()
        settle = ["--reload-settle-s", f"{RELOAD_S}"]
        replicas = [await stack.enter_async_context(serve_proxy(routes, args=settle)) for _ in range(2)]
        controller_port = free_port()
        prometheus = await stack.enter_async_context(prometheus_process(tmp, replicas, controller_port))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        users = itertools.count()
        background = [asyncio.create_task(traffic(session, replicas, route, users)) for route in ROUTES]
        background.append(asyncio.create_task(watch_file(routes, upstreams, run)))
        try:
            await scenarios(run, routes, replicas, prometheus, controller_port, session)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            run.candidate_errors = upstreams.errors


async def scenarios(
    run: Run, routes: Path, replicas: list[Served], prometheus: str, port: int, session: aiohttp.ClientSession
) -> None:
    async with controller_process(routes, prometheus, port, run) as controller:
        # (b): from the second step on, the errors route's candidate fails; both replicas must be at 0 %.
        async def errors_at_zero() -> bool:
            if run.errors_flipped_at is None:
                return False
            return all(percents["errors"] == 0 for percents in await replica_percents(replicas))

        if await until(errors_at_zero, DEADLINE_S, every_s=0.1):
            run.errors_zero_at = time.monotonic()
        # (a), (c), (d) finish; (e) waits at its pause step.
        done = {"healthy": "succeeded", "errors": "aborted", "slow": "aborted", "noisy": "succeeded",
                "paused": "paused:step"}  # fmt: skip

        async def settled() -> bool:
            return await phases(session, controller) == done

        if not await until(settled, DEADLINE_S, every_s=0.25):
            run.notes.append(f"not settled: {await phases(session, controller)}")
        run.settled = await get_json(session, f"{controller.url}/status")
        # (e): SIGKILL, then the same controller again.
        run.file_before_kill = routes.read_text()
        controller.process.kill()
        run.killed = await asyncio.wait_for(controller.process.wait(), 10)
    async with controller_process(routes, prometheus, port, run) as controller:

        async def loaded() -> bool:  # said before it listens; the lines may still be on their way here
            return len(controller.logged("rollout_loaded")) == len(ROUTES)

        await until(loaded, 5)
        run.loaded = controller.logged("rollout_loaded")
        run.file_after_restart = routes.read_text()
        cli = [sys.executable, "-m", "proxy.controller", "promote", "paused", "--controller", controller.url]
        run.promoted = await asyncio.to_thread(subprocess.run, cli, cwd=REPO, env=ENV, capture_output=True,
                                               text=True, timeout=60, check=False)  # fmt: skip
        await invalid_file(run, routes, controller, session)
        await finish(run, routes, replicas, prometheus, controller, session)


async def invalid_file(
    run: Run, routes: Path, controller: Controller, session: aiohttp.ClientSession
) -> None:
    """(f): an operator saves an invalid file while `paused` is at 75 % and would pass to 100 %."""
    valid = routes.read_text()
    run.invalid = valid.replace("default_upstream: legacy", "default_upstream: monolith")  # no such upstream
    routes.write_text(run.invalid)

    async def refused() -> bool:
        return bool(controller.logged("rollout_write_refused", route="paused"))

    if not await until(refused, 3 * INTERVAL_S + SLACK_S):
        run.notes.append("no rollout_write_refused for the paused route")
    run.refused = controller.logged("rollout_write_refused")
    run.said_invalid = controller.logged("rollout_target_invalid")
    run.file_while_invalid = routes.read_text()
    routes.write_text(valid)  # fixed: the controller goes on from where it was

    async def succeeded() -> bool:
        return (await phases(session, controller)).get("paused") == "succeeded"

    if not await until(succeeded, 3 * INTERVAL_S + SLACK_S, every_s=0.25):
        run.notes.append(f"paused did not succeed after the fix: {await phases(session, controller)}")


async def finish(
    run: Run, routes: Path, replicas: list[Served], prometheus: str, controller: Controller,
    session: aiohttp.ClientSession,
) -> None:  # fmt: skip
    run.final = routes.read_text()
    run.final_status = await get_json(session, f"{controller.url}/status")
    wanted = {route: read_percent(run.final, route) for route in ROUTES}

    async def converged() -> bool:
        run.replicas = await replica_percents(replicas)
        return all(percents == wanted for percents in run.replicas)

    await until(converged, 10)

    async def scraped() -> bool:  # the last phase change has reached Prometheus and its rules
        data = await get_json(session, f"{prometheus}/api/v1/alerts")
        run.firing = {a["labels"]["route"] for a in data["data"]["alerts"]
                      if a["labels"]["alertname"] == "StranglerRolloutAborted" and a["state"] == "firing"}
        return run.firing >= {"errors", "slow"}

    await until(scraped, 10, every_s=0.5)
    for query in dashboard_queries():
        if query.metrics() & CONTROLLER_METRICS:
            expr = substitute(query.expr, rate_interval="1m")
            data = (await get_json(session, f"{prometheus}/api/v1/query", query=expr))["data"]
            if not data["result"]:
                run.queries_without_data.append(f"{query.source}: {expr}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    recorded = Run()
    asyncio.run(asyncio.wait_for(script(tmp_path_factory.mktemp("progressive"), recorded), 240))
    return recorded


def aborted_line(run: Run, route: str) -> dict[str, Any]:
    found = said(run.lines, "rollout_aborted", route=route)
    assert len(found) == 1, run.story()
    return found[0]


def failed_checks(line: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in line["verdict"]["checks"] if check["result"] == "failed"}


def test_a_healthy_candidate_is_stepped_to_100_and_every_replica_serves_it(run: Run) -> None:
    assert run.history["healthy"] == [0, 25, 50, 100], run.story()
    assert run.settled is not None
    healthy = next(r for r in run.settled["routes"] if r["route"] == "healthy")
    assert healthy["phase"] == "succeeded"
    assert [percents["healthy"] for percents in run.replicas] == [100, 100]


def test_the_file_after_the_rollouts_differs_from_the_operators_only_in_the_percents(run: Run) -> None:
    changed = difflib.unified_diff(run.original.splitlines(), run.final.splitlines(), lineterm="", n=0)
    diff = [line for line in changed if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    # healthy, noisy and paused went to 100; errors and slow are back at 0, as written at first
    expected = 3 * ["-      percent: 0        # the controller moves this",
                    "+      percent: 100      # the controller moves this"]  # fmt: skip
    assert diff == expected, f"{diff}\n{run.story()}"
    percents = re.compile(r"percent: \d+(\.\d+)? *")
    assert percents.sub("percent: N ", run.final) == percents.sub("percent: N ", run.original)


def test_a_candidate_failing_from_the_second_step_is_rolled_back_on_every_replica_within_two_intervals(
    run: Run,
) -> None:
    assert run.history["errors"] == [0, 25, 50, 0], run.story()
    assert run.errors_flipped_at is not None
    assert run.errors_zero_at is not None, run.story()
    assert run.errors_zero_at - run.errors_flipped_at <= WITHIN_S, run.story()
    line = aborted_line(run, "errors")
    error_rate = failed_checks(line)["error_rate"]
    assert error_rate["observed"]["candidate_rate"] > 0.5
    assert error_rate["p_value"] < 0.01
    assert [percents["errors"] for percents in run.replicas] == [0, 0]


def test_a_candidate_twice_as_slow_is_aborted_on_latency(run: Run) -> None:
    assert run.history["slow"][-1] == 0, run.story()
    line = aborted_line(run, "slow")
    latency = failed_checks(line)["latency_p95"]
    assert latency["observed"]["ratio"] > 1.5
    assert latency["p_value"] < 0.01
    assert "error_rate" not in failed_checks(line)
    assert "slow" in run.firing


def test_one_error_in_40_requests_does_not_abort_a_healthy_candidate(run: Run) -> None:
    assert run.candidate_errors["noisy"] >= 1  # the candidate did fail, now and then
    assert run.history["noisy"] == [0, 25, 50, 100], run.story()
    assert not said(run.lines, "rollout_aborted", route="noisy")
    judged = [line for line in said(run.lines, "rollout_analysis", route="noisy") if "candidate" in line]
    assert [line["result"] for line in judged if line["candidate"]["errors"]], "no analysis saw an error"


def test_a_controller_killed_mid_rollout_resumes_at_its_step(run: Run) -> None:
    assert run.killed == -signal.SIGKILL
    assert run.file_after_restart == run.file_before_kill  # the restart wrote nothing
    loaded = {line["route"]: line for line in run.loaded}
    assert set(loaded) == set(ROUTES), run.story()
    paused = loaded["paused"]
    assert (paused["phase"], paused["paused_by"]) == ("paused", "step")
    assert (paused["step"], paused["percent"]) == (2, 50)  # the pause after 50 %
    assert loaded["errors"]["phase"] == "aborted"  # not started again
    assert loaded["healthy"]["phase"] == "succeeded"
    assert run.promoted is not None
    assert run.promoted.returncode == 0, run.promoted.stderr
    assert run.promoted.stdout.startswith("paused: promote: progressing at 75 %")
    assert run.history["paused"] == [0, 25, 50, 75, 100], run.story()


def test_an_invalid_routes_file_is_never_written_and_the_controller_says_so(run: Run) -> None:
    assert run.refused, run.story()
    refused = run.refused[0]
    assert (refused["route"], refused["percent"]) == ("paused", 100)
    assert any("monolith" in error for error in refused["errors"])
    assert run.file_while_invalid == run.invalid
    assert len(run.said_invalid) == 1
    final = {r["route"]: r["phase"] for r in (run.final_status or {}).get("routes", [])}
    assert final["paused"] == "succeeded"  # once fixed, the step was taken


def test_the_dashboard_and_the_alert_show_the_rollouts_from_prometheus(run: Run) -> None:
    assert not run.queries_without_data, run.queries_without_data
    assert run.firing == {"errors", "slow"}
