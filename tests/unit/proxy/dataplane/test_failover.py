"""failover.Caller: an upstream call behind its breaker, and the candidate-then-primary sequence.

A real Resilience (guards, breakers, their metrics on a fresh registry) and real UpstreamSessions, with
upstreams on loopback. A front server whose handler builds the Trip as the proxy's handler does (routed
by decide(), steered, outgoing headers made) calls the Caller; the Trip is kept for the assertions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from proxy.client import CircuitOpen, UpstreamError
from proxy.config import parse_config
from proxy.dataplane.failover import Caller
from proxy.dataplane.headers import request_headers
from proxy.dataplane.http1 import Request, Responder
from proxy.dataplane.requestfacts import request_facts
from proxy.dataplane.trip import Trip
from proxy.dataplane.upstreams import UpstreamSessions
from proxy.metrics import ProxyMetrics
from proxy.resilience.memory import Budget
from proxy.resilience.state import Resilience
from proxy.routing import compile_routes, decide
from tests.integration.proxy.conftest import (
    Recorder,
    closed_port,
    config_dict,
    images_route,
    upstream_app,
    url_of,
)
from tests.unit.proxy.dataplane.fronts import served

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
REQUEST_ID = "req-42"


def routes_yaml(
    new: str, legacy: str, *, fallback: dict[str, Any] | None = None, new_timeout_s: float = 5.0,
    new_failures: int = 5,
) -> str:  # fmt: skip
    """`images` sends everything (percent 100, keyed on the loopback address) to `new`; `legacy` is its
    primary. A guard that cannot trip here (min_requests 100) counts the candidate's outcomes."""
    doc = config_dict({"legacy": legacy, "new": new})
    doc["upstreams"]["new"].update(timeout_s=new_timeout_s, circuit={"failures": new_failures})
    route = images_route(100, guard={"min_requests": 100})
    if fallback is not None:
        route["fallback"] = fallback
    doc["routes"] = [route]
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Proxy:
    resilience: Resilience
    registry: CollectorRegistry
    trips: list[Trip] = field(default_factory=list)
    raised: list[UpstreamError] = field(default_factory=list)
    client: aiohttp.ClientSession = field(init=False)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def guard_counts(self) -> tuple[int, int]:
        guard = self.resilience.guards.get("images")
        assert guard is not None
        return guard.counts()


ProxyFactory = Callable[[str], Awaitable[Proxy]]


async def as_the_handler_does(caller: Caller, trip: Trip) -> None:
    """The candidate with its route's fallback if it has one; otherwise one call, counted by the guard."""
    _, decision = trip.routing
    policy = caller.resilience.plan(decision.route).fallback
    if decision.role == "candidate" and policy is not None:
        await caller.with_fallback(trip, policy)
        return
    guarded = decision.route if decision.role == "candidate" else None
    await caller.call(trip, decision.upstream, guarded=guarded)


@pytest.fixture
async def make_proxy() -> AsyncIterator[ProxyFactory]:
    sessions = UpstreamSessions()
    stack = AsyncExitStack()

    async def make(text: str) -> Proxy:
        config = parse_config(text)
        table = compile_routes(config)
        registry = CollectorRegistry()
        resilience = Resilience(ProxyMetrics(registry))
        resilience.follow(config)
        sessions.sync(table.upstreams)
        caller = Caller(sessions, resilience, Budget(64 * 1024 * 1024))
        proxy = Proxy(resilience, registry)

        async def handle(request: Request, responder: Responder) -> None:
            trip = Trip(request, responder, REQUEST_ID, request.path, request.query, table=table)
            facts = request_facts(request, request.path, REQUEST_ID, table)
            trip.decided(resilience.steer(decide(table, facts)))
            trip.headers = request_headers(request, REQUEST_ID, table.trusted_proxies)
            proxy.trips.append(trip)
            try:
                await as_the_handler_does(caller, trip)
            except UpstreamError as error:
                proxy.raised.append(error)
                body = json.dumps({"code": error.code}).encode()
                await responder.send(error.status, [("Content-Type", "application/json")], body)

        proxy.client = await stack.enter_async_context(served(handle))
        return proxy

    yield make
    await stack.aclose()
    await sessions.close()


@pytest.fixture
async def legacy(aiohttp_server: ServerFactory) -> tuple[str, Recorder]:
    """The primary: echoes what it got as JSON (served_by "legacy"); its /hold routes answer at once."""
    recorder = Recorder("legacy")
    recorder.release.set()
    return url_of(await aiohttp_server(upstream_app(recorder))), recorder


@pytest.fixture
async def new(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[str, Recorder]]:
    """The candidate: echoes like the primary (served_by "new"); its /hold routes never answer."""
    recorder = Recorder("new")
    yield url_of(await aiohttp_server(upstream_app(recorder))), recorder
    recorder.release.set()  # nothing stays held past the test


@pytest.fixture
async def failing_new(aiohttp_server: ServerFactory) -> str:
    """A candidate that answers every request with 503."""

    async def unavailable(_: web.Request) -> web.StreamResponse:
        return web.json_response({"served_by": "new"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unavailable)
    return url_of(await aiohttp_server(app))


@pytest.fixture
async def counting_listener() -> AsyncIterator[tuple[str, list[int]]]:
    """A port that counts the connections made to it (and closes them)."""
    accepted: list[int] = []

    async def count(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()
        await server.wait_closed()


async def test_an_open_breaker_refuses_without_a_connection_and_the_guard_counts_an_error(
    make_proxy: ProxyFactory, counting_listener: tuple[str, list[int]], legacy: tuple[str, Recorder]
) -> None:
    new_url, accepted = counting_listener
    proxy = await make_proxy(routes_yaml(new_url, legacy[0], new_failures=1))
    reset = UpstreamError("reset", timeout=False, detail="reset", connection_failure=True)
    proxy.resilience.settle("new", reset)  # one connection failure opens it

    response = await proxy.client.get("/api/images/cat")

    assert response.status == 502
    assert isinstance(proxy.raised[0], CircuitOpen)
    assert accepted == []  # not even a connect was tried
    assert proxy.guard_counts() == (1, 1)
    assert proxy.sample("strangler_circuit_rejected_total", upstream="new") == 1
    assert (proxy.trips[0].upstream, proxy.trips[0].role) == ("new", "candidate")


async def test_a_closed_breaker_lets_the_call_through_and_the_guard_counts_a_success(
    make_proxy: ProxyFactory, new: tuple[str, Recorder], legacy: tuple[str, Recorder]
) -> None:
    proxy = await make_proxy(routes_yaml(new[0], legacy[0]))

    response = await proxy.client.get("/api/images/cat")

    assert (await response.json())["served_by"] == "new"
    assert proxy.guard_counts() == (1, 0)
    assert proxy.trips[0].failures is None


async def test_a_candidate_5xx_falls_back_to_the_primary_which_then_serves_the_request(
    make_proxy: ProxyFactory, failing_new: str, legacy: tuple[str, Recorder]
) -> None:
    proxy = await make_proxy(routes_yaml(failing_new, legacy[0], fallback={"when": ["5xx"]}))

    response = await proxy.client.get("/api/images/cat")

    assert response.status == 200
    assert (await response.json())["served_by"] == "legacy"
    trip = proxy.trips[0]
    assert (trip.route, trip.upstream, trip.role) == ("images", "legacy", "primary")
    assert trip.failures is None  # the candidate answered: a status, not a failed call
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="5xx") == 1
    assert proxy.guard_counts() == (1, 1)  # still an error of the candidate's
    breaker = proxy.resilience.breakers.get("new")
    assert breaker is not None
    assert breaker.state == "closed"  # it answered: reachable


async def test_a_candidate_5xx_without_5xx_in_fallback_when_reaches_the_client_as_it_is(
    make_proxy: ProxyFactory, failing_new: str, legacy: tuple[str, Recorder]
) -> None:
    proxy = await make_proxy(routes_yaml(failing_new, legacy[0], fallback={"when": ["connect_error"]}))

    response = await proxy.client.get("/api/images/cat")

    assert (response.status, (await response.json())["served_by"]) == (503, "new")
    assert (proxy.trips[0].upstream, proxy.trips[0].role) == ("new", "candidate")
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="5xx") == 0
    assert legacy[1].seen == []


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_candidate_that_refuses_connections_is_covered_by_the_primary_and_its_failure_recorded(
    make_proxy: ProxyFactory, legacy: tuple[str, Recorder], method: str
) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}"
    text = routes_yaml(unreachable, legacy[0], fallback={"when": ["connect_error"]}, new_failures=1)
    proxy = await make_proxy(text)

    response = await proxy.client.request(method, "/api/images/cat", data=b"a red fox")

    assert (await response.json())["served_by"] == "legacy"
    assert legacy[1].seen[-1]["body_len"] == len(b"a red fox")  # sent whole a second time
    trip = proxy.trips[0]
    assert (trip.upstream, trip.role) == ("legacy", "primary")
    assert [failure[:2] for failure in trip.failures or []] == [("new", "connect")]
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="connect_error") == 1
    assert proxy.sample("strangler_circuit_open", upstream="new") == 1  # booked on the breaker too


@pytest.mark.parametrize(
    ("method", "replay_non_idempotent", "replayed"),
    [("POST", False, False), ("POST", True, True), ("GET", False, True)],
)
async def test_a_timed_out_post_is_replayed_only_when_the_route_accepts_acting_twice(
    make_proxy: ProxyFactory, new: tuple[str, Recorder], legacy: tuple[str, Recorder],
    method: str, replay_non_idempotent: bool, replayed: bool,
) -> None:  # fmt: skip
    fallback = {"when": ["timeout"], "replay_non_idempotent": replay_non_idempotent}
    # the candidate's /hold never answers: its read timeout (not asserted on) ends the call
    proxy = await make_proxy(routes_yaml(new[0], legacy[0], fallback=fallback, new_timeout_s=0.2))

    response = await proxy.client.request(method, "/api/images/hold", data=b"a red fox")

    assert new[1].entered.is_set()  # the candidate did receive it
    trip = proxy.trips[0]
    if replayed:
        assert (await response.json())["served_by"] == "legacy"
        assert (trip.upstream, trip.role) == ("legacy", "primary")
        assert [failure[:2] for failure in trip.failures or []] == [("new", "timeout")]
        assert proxy.sample("strangler_fallbacks_total", route="images", reason="timeout") == 1
    else:
        assert response.status == 504
        assert proxy.raised[0].kind == "timeout"
        assert (trip.upstream, trip.role) == ("new", "candidate")
        assert trip.failures is None  # raised to the handler, which records it
        assert not legacy[1].entered.is_set()
        assert proxy.sample("strangler_fallbacks_total", route="images", reason="timeout") == 0
    assert proxy.guard_counts() == (1, 1)
