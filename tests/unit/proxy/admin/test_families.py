"""A worker's metric families as JSON for its parent: what is decoded is what was collected."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from proxy.admin.families import decode, encode
from proxy.metrics import ProxyMetrics


def test_decoded_families_are_the_collected_ones() -> None:
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.observe_request("images", "legacy", "primary", "GET", 503, 0.2)
    collected = list(metrics.registry.restricted_registry(
        ["strangler_requests_total", "strangler_request_duration_seconds_bucket"]).collect())  # fmt: skip

    decoded = decode(json.loads(json.dumps(encode(collected))))

    assert [(f.name, f.type, f.documentation) for f in decoded] == [
        (f.name, f.type, f.documentation) for f in collected
    ]
    assert [f.samples for f in decoded] == [f.samples for f in collected]
    assert {sample.name for f in decoded for sample in f.samples} == {
        "strangler_requests_total", "strangler_request_duration_seconds_bucket"
    }


@pytest.mark.parametrize("body", [None, [], {}, {"families": [{"name": "x"}]},
                                  {"families": [{"name": "x", "help": "", "type": "nope", "samples": []}]},
                                  {"families": [{"name": "x", "help": "", "type": "counter",
                                                 "samples": [["x_total", [], 1]]}]}])  # fmt: skip
def test_anything_else_is_refused(body: object) -> None:
    with pytest.raises(ValueError, match="not metric families"):
        decode(body)
