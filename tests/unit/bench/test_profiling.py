from __future__ import annotations

import pytest

from bench.profiling import category_of, summarize

_ASYNC = "run (asyncio/runners.py:86)"
_HANDLER = f"{_ASYNC};_handle_request (aiohttp/web_protocol.py:567);handle (proxy/handler.py:120)"
COLLAPSED = "\n".join([
    f"{_HANDLER};decide (proxy/routing.py:195);matches (proxy/routing.py:84) 30",
    f"{_HANDLER};info (structlog/_native.py:10);dumps (json/__init__.py:231) 20",
    f"{_HANDLER};forward (proxy/forwarding.py:50);_request (aiohttp/client.py:558) 40",
    f"{_ASYNC};mystery (somewhere/else.py:1);deeper (elsewhere.py:2) 10",
    "not a sample line",
])  # fmt: skip


def test_each_sample_is_charged_to_the_innermost_frame_with_a_known_category() -> None:
    summary = summarize(COLLAPSED)
    assert summary.samples == 100
    assert dict(summary.by_category) == pytest.approx({
        "routing decision": 0.30,
        "access log": 0.20,  # json called by structlog: the log's cost, not the handler's
        "aiohttp client (upstream side)": 0.40,
        "asyncio / event loop": 0.10,  # unknown frames fall back to the nearest known caller
    })  # fmt: skip
    assert summary.by_category[0][0] == "aiohttp client (upstream side)"  # largest first


def test_the_top_functions_are_the_innermost_frames() -> None:
    summary = summarize(COLLAPSED, top=2)
    assert summary.top_functions == [("_request (aiohttp/client.py:558)", 0.4),
                                     ("matches (proxy/routing.py:84)", 0.3)]  # fmt: skip
    assert summary.share("routing decision") == pytest.approx(0.3)
    assert summary.share("nothing like it") == 0.0


def test_an_empty_profile_has_no_shares() -> None:
    summary = summarize("")
    assert (summary.samples, summary.by_category, summary.top_functions) == (0, [], [])


def test_categories_come_from_the_file_path() -> None:
    assert category_of("proxy/bucketing.py") == "routing decision"
    assert category_of("prometheus_client/metrics.py") == "metrics"
    assert category_of("aiohttp/http_parser.py") == "aiohttp server (client side)"
    assert category_of("numpy/core.py") is None
