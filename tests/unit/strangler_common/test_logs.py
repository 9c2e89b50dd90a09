from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from strangler_common.logs import DirectLog, configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("demo", stream=out)
    yield out
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_lines_are_json_with_the_common_fields(stream: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(request_id="abc")
    structlog.get_logger().info("order_placed", order_id=7, note='quote " and \n newline')

    [line] = lines(stream)
    assert line["event"] == "order_placed"
    assert line["level"] == "info"
    assert line["service"] == "demo"
    assert line["request_id"] == "abc"
    assert line["order_id"] == 7
    assert line["note"] == 'quote " and \n newline'
    assert "timestamp" in line


def test_stdlib_loggers_write_the_same_json_shape(stream: io.StringIO) -> None:
    logging.getLogger("aiohttp.server").error("boom %s", "here")

    [line] = lines(stream)
    assert line["event"] == "boom here"
    assert line["level"] == "error"
    assert line["service"] == "demo"
    assert line["logger"] == "aiohttp.server"


def test_fields_named_like_secrets_are_redacted(stream: io.StringIO) -> None:
    structlog.get_logger().info("calling", api_key="sk-live-123", authorization="Bearer xyz", size=3)

    [line] = lines(stream)
    assert line["api_key"] == "[redacted]"
    assert line["authorization"] == "[redacted]"
    assert line["size"] == 3
    assert "sk-live-123" not in stream.getvalue()


def test_levels_below_the_threshold_are_dropped() -> None:
    out = io.StringIO()
    configure_logging("demo", level="WARNING", stream=out)
    try:
        structlog.get_logger().info("quiet")
        structlog.get_logger().warning("loud")
    finally:
        structlog.reset_defaults()
    assert [line["event"] for line in lines(out)] == ["loud"]


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("demo", level="CHATTY")


def test_a_direct_line_has_the_shape_and_order_of_a_structlog_line(stream: io.StringIO) -> None:
    fields = ("method", "path", "status", "note")
    structlog.get_logger("access").info("request", method="GET", path="/x", status=200, note='a "b"\n')
    DirectLog("request", fields)("GET", "/x", 200, 'a "b"\n')

    via_structlog, direct = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(direct) == list(via_structlog)  # same keys, same order
    assert {k: v for k, v in direct.items() if k != "timestamp"} == {
        k: v for k, v in via_structlog.items() if k != "timestamp"
    }
    assert direct["timestamp"].endswith("Z")
    assert datetime.datetime.fromisoformat(direct["timestamp"]).tzinfo is not None


def test_a_direct_line_is_not_written_when_info_is_filtered_out() -> None:
    out = io.StringIO()
    configure_logging("demo", level="WARNING", stream=out)
    try:
        log = DirectLog("request", ("path",))
        log("/x")
        assert not log.enabled
        assert out.getvalue() == ""
    finally:
        structlog.reset_defaults()


def test_a_direct_line_refuses_field_names_that_name_secrets(stream: io.StringIO) -> None:
    with pytest.raises(ValueError, match="api_key"):
        DirectLog("request", ("path", "api_key"))
