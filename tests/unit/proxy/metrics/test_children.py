from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from proxy.metrics.children import Children


def test_a_child_is_looked_up_once_and_its_label_values_are_text() -> None:
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "Requests.", ["route", "code"], registry=registry)
    children = Children(requests)

    first = children(("images", 200))
    first.inc()
    children(("images", 200)).inc()

    assert children(("images", 200)) is first
    assert registry.get_sample_value("demo_requests_total", {"route": "images", "code": "200"}) == 2
    assert children(("images", 503)) is not first
