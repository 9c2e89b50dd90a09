"""The Prometheus client: instant queries at a time, and an error that says what went wrong."""

from __future__ import annotations

import asyncio
import json
import math
import socket

import pytest

from proxy.controller.prometheus import Prometheus, PrometheusError, Series, parse_answer
from tests.unit.proxy.controller.fake_prometheus import FakePrometheus


async def test_a_vector_comes_back_as_series_with_their_labels_at_the_time_asked(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fake.vector("up", [({"instance": "a"}, 1.0), ({"instance": "b"}, 0.0)], at=1234.5)

    found = await prometheus.query("up", at=1234.5)

    assert found == [Series({"instance": "a"}, 1.0), Series({"instance": "b"}, 0.0)]
    assert fake.asked == [("up", 1234.5)]


async def test_a_scalar_is_one_series_without_labels_and_special_values_are_read(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    scalar = {"resultType": "scalar", "result": [1, "+Inf"]}
    fake.answer("scalar(1)", 200, {"status": "success", "data": scalar})
    fake.vector("nan", [({}, math.nan)])

    assert await prometheus.query("scalar(1)", at=1) == [Series({}, math.inf)]
    (series,) = await prometheus.query("nan", at=1)
    assert math.isnan(series.value)


async def test_an_unreachable_prometheus_is_said_with_its_address_and_marked_unreachable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Prometheus(f"http://127.0.0.1:{port}")
    await client.open()
    try:
        said = f"cannot reach Prometheus at http://127.0.0.1:{port}"
        with pytest.raises(PrometheusError, match=said) as caught:
            await client.query("up", at=1)
    finally:
        await client.close()
    assert caught.value.unreachable


async def test_a_bad_status_without_prometheus_json_is_an_error_but_not_an_outage(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fake.down = True

    with pytest.raises(PrometheusError, match=r"HTTP 503 .* not Prometheus's JSON") as caught:
        await prometheus.query("up", at=1)
    assert not caught.value.unreachable


async def test_a_query_prometheus_refuses_is_said_with_its_error_type_and_message(
    fake: FakePrometheus, prometheus: Prometheus
) -> None:
    fake.answer("sum(", 400, {"status": "error", "errorType": "bad_data", "error": "unexpected end of input"})

    with pytest.raises(PrometheusError, match=r"HTTP 400 to 'sum\(': bad_data: unexpected end of input"):
        await prometheus.query("sum(", at=1)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "gave a matrix result"),
        ({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}, "gave a string result"),
        ({"status": "success"}, "has no data"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "malformed"),
        ({"status": "error", "errorType": "timeout", "error": "query timed out"}, "timeout: query timed out"),
    ],
)
def test_an_answer_of_an_unexpected_shape_is_an_error_that_names_it(body: object, said: str) -> None:
    with pytest.raises(PrometheusError, match=said):
        parse_answer("q", 200, json.dumps(body).encode())


def test_using_the_client_before_it_is_opened_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="open"):
        asyncio.run(Prometheus("http://127.0.0.1:9").query("up", at=1))
