"""`make run` as a newcomer meets it: the three services behind the proxy, one log stream, Ctrl-C."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from tests.e2e.conftest import Stack


def fetch(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return response.status, dict(response.headers), response.read()


def proxy_metric(stack: Stack, name: str, **labels: str) -> float:
    _, _, text = fetch(f"{stack.admin}/metrics")
    total = 0.0
    for line in text.decode().splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_storefront_is_served_through_the_proxy_exactly_as_by_the_monolith(stack: Stack) -> None:
    direct_status, direct_headers, direct_body = fetch(f"{stack.legacy}/")
    status, headers, body = fetch(f"{stack.proxy}/")

    assert status == direct_status == 200
    assert headers["Content-Type"] == direct_headers["Content-Type"]
    assert headers["Content-Type"].startswith("text/html")
    assert body == direct_body


def test_business_routes_pass_through_the_proxy(stack: Stack) -> None:
    _, _, catalog = fetch(f"{stack.proxy}/api/catalog")
    items = json.loads(catalog)["items"]
    order = {"items": [{"sku": items[0]["sku"], "qty": 2}]}
    status, _, created = fetch(
        f"{stack.proxy}/api/orders",
        method="POST",
        body=json.dumps(order).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201
    order_id = json.loads(created)["id"]
    _, _, read_back = fetch(f"{stack.legacy}/api/orders/{order_id}")
    assert json.loads(read_back)["id"] == order_id


def generate(stack: Stack, headers: dict[str, str]) -> dict[str, Any]:
    status, _, body = fetch(
        f"{stack.proxy}/api/images",
        method="POST",
        body=json.dumps({"prompt": "a lighthouse at dusk", "size": "256x256"}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    assert status == 201
    generation: dict[str, Any] = json.loads(body)
    return generation


def test_the_flag_header_sends_image_generation_to_the_new_service(stack: Stack) -> None:
    before = proxy_metric(stack, "strangler_requests_total", route="images", role="candidate")
    generation = generate(stack, {"X-Images-Backend": "new"})
    after = proxy_metric(stack, "strangler_requests_total", route="images", role="candidate")

    assert after == before + 1
    image_url = stack.proxy + generation["images"][0]["url"]
    status, headers, png = fetch(image_url, headers={"X-Images-Backend": "new"})
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert png.startswith(b"\x89PNG")
    # the image service really holds it: asked directly, it knows the generation
    _, _, direct = fetch(f"{stack.imageservice}/api/images/{generation['id']}")
    assert json.loads(direct)["id"] == generation["id"]


def test_ctrl_c_stops_all_three_and_the_log_stream_was_prefixed_json(stack: Stack) -> None:
    fetch(f"{stack.proxy}/", headers={"X-Request-ID": "e2e-trace-1"})
    returncode = stack.stop()

    output = stack.output()
    # honcho answers SIGINT with the shell's convention, 128 + 2; each service must have exited 0
    assert returncode == 130, output[-3000:]
    for name in ("legacy", "imageservice", "proxy"):
        assert f"{name}.1 stopped (rc=0)" in output, output[-3000:]
    services_seen = set()
    for line in output.splitlines():
        match = re.match(r"^\S+ (legacy|imageservice|proxy)\.\d+\s+\| (\{.*\})$", line)
        if match:
            record = json.loads(match.group(2))
            assert {"timestamp", "level", "service", "event"} <= set(record)
            services_seen.add(match.group(1))
    assert services_seen == {"legacy", "imageservice", "proxy"}
    # the request id travelled from the client through the proxy to the monolith's log
    traced = [line for line in output.splitlines() if "e2e-trace-1" in line]
    assert any(" proxy." in line for line in traced)
    assert any(" legacy." in line for line in traced)
