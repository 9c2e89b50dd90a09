"""The connection cap in force fits the file descriptors, and says so when it is lower than asked."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from proxy.config import parse_config
from proxy.dataplane.fdlimit import (
    FDS_PER_CONNECTION,
    RESERVED_FDS,
    ConnectionCap,
    NoFile,
    capacity,
    reserve_of,
)
from proxy.metrics import ProxyMetrics
from proxy.routing import RouteTable, compile_routes

BASE = "version: 1\nupstreams: {legacy: {url: 'http://127.0.0.1:1'}}\ndefault_upstream: legacy\n"


def table(max_connections: int) -> RouteTable:
    return compile_routes(parse_config(BASE + f"limits: {{max_connections: {max_connections}}}\n"))


def test_each_connection_needs_two_descriptors_beyond_the_reserve() -> None:
    assert capacity(1024, RESERVED_FDS) == (1024 - RESERVED_FDS) // FDS_PER_CONNECTION == 480
    assert capacity(None, RESERVED_FDS) is None
    assert capacity(10, RESERVED_FDS) == 1  # never 0: the proxy still answers someone
    assert reserve_of(table(10)) == RESERVED_FDS


def test_a_max_connections_the_descriptors_cannot_honour_is_capped_and_said_at_error_with_numbers() -> None:
    registry = CollectorRegistry()
    with capture_logs() as logs:
        cap = ConnectionCap(NoFile(soft=1024, hard=1024), table(4096), metrics=ProxyMetrics(registry))
    assert cap() == 480
    assert registry.get_sample_value("strangler_connection_limit") == 480
    assert registry.get_sample_value("strangler_open_files_limit") == 1024
    [said] = [line for line in logs if line["event"] == "max_connections_exceeds_open_files"]
    assert said["log_level"] == "error"
    assert (said["max_connections"], said["effective_max_connections"], said["open_files_limit"]) == (
        4096, 480, 1024,
    )
    assert "ulimit -n" in said["detail"]
    assert "LimitNOFILE=" in said["detail"]


def test_a_reload_re_evaluates_the_cap_and_speaks_only_when_it_changes() -> None:
    cap = ConnectionCap(NoFile(soft=1024, hard=1024), table(4096))
    with capture_logs() as logs:
        cap.follow(table(4096))  # same verdict: silent
        cap.follow(table(100))
        assert cap() == 100
        cap.follow(table(5000))
        assert cap() == 480
    assert [line["event"] for line in logs] == [
        "max_connections_fits_open_files", "max_connections_exceeds_open_files",
    ]


def test_without_a_limit_on_descriptors_max_connections_is_the_cap() -> None:
    assert ConnectionCap(NoFile(soft=None, hard=None), table(4096))() == 4096
