from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from strangler_common.logs import configure_logging
from strangler_common.web import (
    REQUEST_ID,
    accept_request_id,
    install_observability,
    json_error,
    metrics_handler,
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("demo", stream=out)
    yield out
    structlog.reset_defaults()


def make_app() -> web.Application:
    app = web.Application()
    install_observability(app)
    registry = CollectorRegistry()
    hits = Counter("demo_hits_total", "hits", registry=registry)

    async def hello(request: web.Request) -> web.Response:
        hits.inc()
        structlog.get_logger().info("inside", seen_id=request[REQUEST_ID])
        return web.json_response({"request_id": request[REQUEST_ID]})

    async def explode(_: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    async def refuse(_: web.Request) -> web.Response:
        return json_error(409, "conflict", "already there", detail="x")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"chunk")
        return response

    app.router.add_get("/hello", hello)
    app.router.add_get("/explode", explode)
    app.router.add_get("/refuse", refuse)
    app.router.add_get("/stream", stream)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app


@pytest.mark.parametrize("value", ["abc-123", "req_1.2:3", "A" * 128])
def test_a_sane_request_id_is_kept(value: str) -> None:
    assert accept_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "has space", "A" * 129, "new\nline", "tab\there", "é"])
def test_an_unusable_request_id_is_replaced(value: str | None) -> None:
    replaced = accept_request_id(value)
    assert replaced != value
    assert len(replaced) == 32


async def test_the_callers_request_id_is_used_and_returned(aiohttp_client, log_stream) -> None:
    client = await aiohttp_client(make_app())
    response = await client.get("/hello", headers={"X-Request-ID": "trace-42"})

    assert response.headers["X-Request-ID"] == "trace-42"
    assert await response.json() == {"request_id": "trace-42"}
    logged = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    inside = next(line for line in logged if line["event"] == "inside")
    access = next(line for line in logged if line["event"] == "request")
    assert inside["request_id"] == "trace-42"
    assert access["request_id"] == "trace-42"
    assert access["method"] == "GET"
    assert access["path"] == "/hello"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0


async def test_a_request_id_is_generated_when_missing_also_on_streamed_responses(aiohttp_client) -> None:
    client = await aiohttp_client(make_app())
    plain = await client.get("/hello")
    streamed = await client.get("/stream")

    assert (await plain.json())["request_id"] == plain.headers["X-Request-ID"]
    assert len(streamed.headers["X-Request-ID"]) == 32
    assert await streamed.read() == b"chunk"


async def test_unknown_routes_and_methods_answer_json_errors(aiohttp_client) -> None:
    client = await aiohttp_client(make_app())

    missing = await client.get("/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"

    wrong_method = await client.post("/hello")
    assert wrong_method.status == 405
    assert (await wrong_method.json())["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]


async def test_an_unhandled_error_is_a_json_500_without_internals(aiohttp_client, log_stream) -> None:
    client = await aiohttp_client(make_app())
    response = await client.get("/explode", headers={"X-Request-ID": "r-1"})

    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret internals" not in json.dumps(body)
    logged = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    failure = next(line for line in logged if line["event"] == "unhandled_error")
    assert "secret internals" in failure["exception"]
    assert failure["request_id"] == "r-1"
    access = next(line for line in logged if line["event"] == "request")
    assert access["status"] == 500


async def test_json_error_carries_extra_fields(aiohttp_client) -> None:
    client = await aiohttp_client(make_app())
    response = await client.get("/refuse")
    assert response.status == 409
    assert await response.json() == {"error": {"code": "conflict", "message": "already there", "detail": "x"}}


async def test_metrics_are_served_in_the_prometheus_text_format(aiohttp_client) -> None:
    client = await aiohttp_client(make_app())
    await client.get("/hello")
    response = await client.get("/metrics")

    assert response.headers["Content-Type"].startswith("text/plain")
    assert "demo_hits_total 1.0" in await response.text()
