from __future__ import annotations

import asyncio
import datetime
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_common.linebatch import PIPE_BUF
from strangler_common.logs import DirectLog, configure_logging

REPO = Path(__file__).resolve().parents[3]


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


# The access log's batches: DirectLog buffers, writes whole lines of at most PIPE_BUF bytes, and flushes.

FIELDS = ("method", "path", "status")


class Writes(io.StringIO):
    """A stream that keeps each write, and whether a flush followed it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.flushed: list[bool] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        self.flushed.append(False)
        return super().write(text)

    def flush(self) -> None:
        if self.flushed:
            self.flushed[-1] = True


@pytest.fixture
def writes() -> Iterator[Writes]:
    out = Writes()
    configure_logging("demo", stream=out)
    yield out
    structlog.reset_defaults()


def paths(stream: io.StringIO) -> list[object]:
    return [line["path"] for line in lines(stream)]


async def test_buffered_lines_are_written_on_flush_not_before(writes: Writes) -> None:
    log = DirectLog("request", FIELDS, flush_s=60.0)
    log("GET", "/a", 200)
    log("GET", "/b", 404)
    await asyncio.sleep(0)  # a turn of the loop: the batch is not due

    assert writes.getvalue() == ""
    log.flush()
    assert paths(writes) == ["/a", "/b"]
    assert writes.writes == [writes.getvalue()]  # one batch, one write
    assert writes.flushed == [True]
    log.flush()
    assert len(writes.writes) == 1  # nothing is written twice


def test_the_running_loop_writes_the_batch_once_its_interval_has_passed(
    writes: Writes, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.new_event_loop()
    clock = [1000.0]
    monkeypatch.setattr(loop, "time", lambda: clock[0])  # the loop's own clock, moved by the test

    async def turns() -> None:  # one turn finds the timer due, the next runs it
        for _ in range(3):
            await asyncio.sleep(0)

    async def scenario() -> None:
        log = DirectLog("request", FIELDS, flush_s=5.0)
        log("GET", "/a", 200)
        clock[0] += 4.0
        log("GET", "/b", 200)  # joins the batch the first line started
        await turns()
        assert writes.getvalue() == ""
        clock[0] += 1.0  # 5 s after the first line
        await turns()
        assert paths(writes) == ["/a", "/b"]
        assert len(writes.writes) == 1

        log("GET", "/c", 200)  # a new batch, a new clock
        await turns()
        assert paths(writes) == ["/a", "/b"]
        clock[0] += 5.0
        await turns()
        assert paths(writes) == ["/a", "/b", "/c"]

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


async def test_a_batch_that_reaches_its_size_bound_is_written_at_once(writes: Writes) -> None:
    log = DirectLog("request", FIELDS, flush_s=60.0, buffer_bytes=1000)
    sent = [f"/{i:03d}" for i in range(30)]  # about 110 bytes a line
    for path in sent:
        log("GET", path, 200)

    written = paths(writes)
    assert 0 < len(written) < len(sent)
    assert written == sent[: len(written)]  # whole lines, in order
    log.flush()
    assert paths(writes) == sent


async def test_interval_zero_writes_and_flushes_each_line_at_once(writes: Writes) -> None:
    log = DirectLog("request", FIELDS, flush_s=0)
    log("GET", "/a", 200)
    assert paths(writes) == ["/a"]
    log("GET", "/b", 200)
    assert paths(writes) == ["/a", "/b"]
    assert len(writes.writes) == 2
    assert all(writes.flushed)


def test_without_a_running_loop_each_line_is_written_at_once(writes: Writes) -> None:
    log = DirectLog("request", FIELDS, flush_s=60.0)
    log("GET", "/a", 200)
    assert paths(writes) == ["/a"]


async def test_the_interval_comes_from_configure_logging() -> None:
    out = io.StringIO()
    try:
        configure_logging("demo", stream=out, direct_flush_s=0)
        DirectLog("request", FIELDS)("GET", "/now", 200)
        assert paths(out) == ["/now"]
        configure_logging("demo", stream=out)  # the default: 100 ms batches
        log = DirectLog("request", FIELDS)
        log("GET", "/later", 200)
        assert paths(out) == ["/now"]
        log.flush()
        assert paths(out) == ["/now", "/later"]
    finally:
        structlog.reset_defaults()
    for bad in (-0.1, math.nan):
        with pytest.raises(ValueError, match="flush interval"):
            configure_logging("demo", stream=out, direct_flush_s=bad)


async def test_each_write_is_whole_lines_of_at_most_pipe_buf_bytes(writes: Writes) -> None:
    log = DirectLog("request", FIELDS, flush_s=60.0, buffer_bytes=1 << 20)
    sent = [f"/{i}/" + "é\x01" * (i * 37 % 300) for i in range(400)]  # escaped: 6 bytes a character
    for path in sent:
        log("GET", path, 200)
    log.flush()

    assert paths(writes) == sent
    assert len(writes.writes) > 1
    for text in writes.writes:
        assert len(text.encode()) <= PIPE_BUF <= 4096
        assert text.endswith("\n")
        assert all(json.loads(line) for line in text.splitlines())  # starts and ends at a line boundary
    assert all(writes.flushed)


async def test_a_line_longer_than_pipe_buf_is_written_alone_and_whole(writes: Writes) -> None:
    log = DirectLog("request", FIELDS, flush_s=60.0)
    long_path = "/" + "x" * (2 * PIPE_BUF)
    log("GET", "/before", 200)
    log("GET", long_path, 200)
    log("GET", "/after", 200)
    log.flush()
    log("GET", long_path, 200)  # first in its batch
    log.flush()

    each_write = [paths(io.StringIO(text)) for text in writes.writes]
    assert each_write == [["/before"], [long_path], ["/after"], [long_path]]


async def test_a_line_is_never_written_twice_when_a_write_fails() -> None:
    class Broken(Writes):
        fail = True

        def write(self, text: str) -> int:
            if self.fail:
                self.fail = False
                raise BrokenPipeError
            return super().write(text)

    out = Broken()
    configure_logging("demo", stream=out)
    try:
        log = DirectLog("request", FIELDS, flush_s=60.0)
        log("GET", "/lost", 200)
        with pytest.raises(BrokenPipeError):
            log.flush()
        log("GET", "/next", 200)
        log.flush()
    finally:
        structlog.reset_defaults()
    assert paths(out) == ["/next"]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()),
                       min_size=3, max_size=3))  # fmt: skip
def test_a_direct_line_is_byte_for_byte_what_json_dumps_writes(values: list[object]) -> None:
    out = io.StringIO()
    configure_logging("dé%s\n", stream=out)
    try:
        DirectLog("request%d", ("a", "b%s", "ünï"), flush_s=0)(*values)
    finally:
        structlog.reset_defaults()
    written = out.getvalue()
    timestamp = json.loads(written)["timestamp"]
    expected = {"a": values[0], "b%s": values[1], "ünï": values[2], "event": "request%d", "level": "info",
                "timestamp": timestamp, "service": "dé%s\n"}  # fmt: skip
    assert written == json.dumps(expected) + "\n"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", timestamp)


def test_a_direct_line_refuses_the_wrong_number_of_values(stream: io.StringIO) -> None:
    with pytest.raises(ValueError, match="3 values expected, got 2"):
        DirectLog("request", FIELDS)("GET", "/x")


def test_what_is_still_buffered_is_written_when_the_process_exits(tmp_path: Path) -> None:
    # The last resort (the proxy itself flushes when it stops): a loop ends with a batch still buffered.
    script = """
import asyncio
from strangler_common.logs import DirectLog, configure_logging
configure_logging("demo", direct_flush_s=3600)
async def main():
    log = DirectLog("request", ("path",))
    for i in range(5):
        log(f"/{i}")
asyncio.run(main())
print("loop closed", flush=True)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.stdout == "loop closed\n"
    assert [json.loads(line)["path"] for line in result.stderr.splitlines()] == [f"/{i}" for i in range(5)]
