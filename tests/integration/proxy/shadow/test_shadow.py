"""Shadow mode never changes what the client gets or when: whatever the candidate does, and every
request it does not compare is counted with its reason."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.dataplane.keys import SHADOW
from proxy.resilience.breaker import BreakerPolicy
from proxy.routing.bucketing import bucket, threshold
from strangler_common.shadowmark import verify
from tests.integration.proxy.conftest import (
    SHADOW_KEY,
    WAIT_S,
    Proxy,
    ProxyFactory,
    closed_port,
    config_dict,
    url_of,
)
from tests.integration.proxy.shadow_fakes import (
    Service,
    outcome,
    outcomes,
    raw_server,
    service_app,
    settle,
    shadow_route,
)

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def primary(aiohttp_server: ServerFactory) -> tuple[TestServer, Service]:
    service = Service("legacy")
    return await aiohttp_server(service_app(service)), service


@pytest.fixture
async def candidate(aiohttp_server: ServerFactory) -> tuple[TestServer, Service]:
    service = Service("new")
    server = await aiohttp_server(service_app(service))
    yield server, service
    service.release.set()


async def direct(server: TestServer, method: str, path: str, **kwargs: Any) -> tuple[int, str, bytes]:
    """What the client would get from the primary itself."""
    url = url_of(server) + path
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def through(proxy: Proxy, method: str, path: str, **kwargs: Any) -> tuple[int, str, bytes]:
    async with proxy.client.request(method, path, **kwargs) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def proxy_for(make_proxy: ProxyFactory, primary_url: str, candidate_url: str, **shadow: Any) -> Proxy:
    doc = config_dict({"legacy": primary_url, "new": candidate_url}, routes=[shadow_route(shadow)])
    return await make_proxy(doc)


async def test_the_client_has_its_whole_answer_while_the_candidate_is_still_blocked(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, slow) = primary, candidate
    slow.hold = True
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server))
    expected = await direct(primary_server, "POST", "/api/images", json={"prompt": "x"})

    # Bounded: if the client had to wait for the blocked candidate, this fails instead of hanging.
    got = await asyncio.wait_for(through(proxy, "POST", "/api/images", json={"prompt": "x"}), WAIT_S)

    assert got == expected
    await asyncio.wait_for(slow.entered.wait(), WAIT_S)
    assert not slow.release.is_set()  # the candidate is still blocked: the client did not wait for it
    assert outcomes(proxy) == {}
    slow.release.set()
    await settle(proxy)
    assert outcomes(proxy) == {"compared": 1}


async def test_the_copy_is_sent_only_once_the_client_has_the_primarys_whole_answer(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, slow_primary), (candidate_server, at_candidate) = primary, candidate
    slow_primary.hold = True
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server))

    answer = asyncio.ensure_future(through(proxy, "POST", "/api/images", json={"prompt": "x"}))
    await asyncio.wait_for(slow_primary.entered.wait(), WAIT_S)  # the request body is complete by now
    await asyncio.sleep(0.2)  # room for a copy that started early to reach the candidate (it must not)
    assert at_candidate.seen == []
    slow_primary.release.set()
    status, _, _ = await asyncio.wait_for(answer, WAIT_S)
    await settle(proxy)

    assert status == 200
    assert len(at_candidate.seen) == 1
    assert outcomes(proxy) == {"compared": 1}


@pytest.mark.parametrize("behaviour", ["down", "reset", "garbage"])
async def test_a_broken_candidate_changes_nothing_for_the_client_and_counts_an_error(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], behaviour: str
) -> None:
    primary_server, _ = primary
    if behaviour == "down":
        proxy = await proxy_for(make_proxy, url_of(primary_server), f"http://127.0.0.1:{closed_port()}")
        got = await through(proxy, "GET", "/api/images/1?x=1")
    else:
        async with raw_server(behaviour) as port:
            proxy = await proxy_for(make_proxy, url_of(primary_server), f"http://127.0.0.1:{port}")
            got = await through(proxy, "GET", "/api/images/1?x=1")
            await settle(proxy)
    await settle(proxy)

    assert got == await direct(primary_server, "GET", "/api/images/1?x=1")
    assert outcomes(proxy) == {"error": 1}
    assert proxy.sample("strangler_requests_total", route="images", upstream="legacy", role="primary",
                        method="GET", code="200") == 1  # fmt: skip


async def test_a_candidate_slower_than_its_own_timeout_counts_a_timeout(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, slow) = primary, candidate
    slow.hold = True  # never released before the timeout fires
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), timeout_s=0.2)

    got = await asyncio.wait_for(through(proxy, "GET", "/api/images/1"), WAIT_S)
    await settle(proxy)

    assert got == await direct(primary_server, "GET", "/api/images/1")
    assert outcomes(proxy) == {"timeout": 1}
    assert proxy.sample("strangler_request_duration_seconds_count", route="images", upstream="new",
                        role="shadow") == 1  # fmt: skip


async def test_the_in_flight_bound_holds_under_a_burst_and_drops_are_counted(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, slow) = primary, candidate
    slow.hold = True
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), max_in_flight=2)

    burst = asyncio.gather(*(through(proxy, "GET", f"/api/images/{i}") for i in range(8)))
    answers = await asyncio.wait_for(burst, WAIT_S)

    assert [status for status, _, _ in answers] == [200] * 8
    assert proxy.app[SHADOW].in_flight == {"images": 2}
    assert outcome(proxy, "dropped_full") == 6
    slow.release.set()
    await settle(proxy)
    assert outcomes(proxy) == {"compared": 2, "dropped_full": 6}
    assert len(slow.seen) == 2
    assert proxy.app[SHADOW].in_flight == {}
    assert [s for s, _, _ in [await through(proxy, "GET", "/api/images/again")]] == [200]
    await settle(proxy)
    assert outcome(proxy, "compared") == 3  # the slots were given back


async def test_an_oversized_request_body_is_served_but_not_mirrored(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, seen_by_primary), (candidate_server, seen_by_candidate) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), max_body_bytes=100)

    with_length = await through(proxy, "POST", "/api/images", data=b"x" * 1000)

    async def chunked() -> Any:
        for _ in range(10):
            yield b"y" * 100

    without_length = await through(proxy, "POST", "/api/images", data=chunked())
    await settle(proxy)

    assert (with_length[0], without_length[0]) == (200, 200)
    assert [len(seen["body"]) for seen in seen_by_primary.seen] == [1000, 1000]
    assert seen_by_candidate.seen == []
    assert outcomes(proxy) == {"skipped_body": 2}


async def test_an_oversized_response_is_delivered_whole_but_not_compared(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, _) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), max_body_bytes=100)

    big = await through(proxy, "GET", "/api/sized?n=5000")
    small = await through(proxy, "GET", "/api/sized?n=50")
    await settle(proxy)

    assert (big[2], small[2]) == (b"x" * 5000, b"x" * 50)
    assert outcomes(proxy) == {"skipped_body": 1, "compared": 1}


async def test_a_method_that_is_not_listed_is_not_mirrored_and_is_counted(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, seen) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), methods=["GET"])

    assert (await through(proxy, "POST", "/api/images", json={"prompt": "x"}))[0] == 200
    assert (await through(proxy, "DELETE", "/api/images/1"))[0] == 200
    await settle(proxy)

    assert seen.seen == []
    assert outcomes(proxy) == {"skipped_method": 2}


async def test_sampling_is_decided_by_the_request_id_so_a_replay_samples_the_same(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, seen) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), percent=30)
    ids = [f"req-{i}" for i in range(40)]
    expected = {i for i in ids if bucket(i, salt="images#shadow") < threshold(30)}

    for _ in range(2):  # the replay mirrors exactly the same requests
        for request_id in ids:
            await through(proxy, "GET", "/api/images/1", headers={"X-Request-ID": request_id})
    await settle(proxy)

    mirrored = Counter(s["headers"]["X-Request-ID"] for s in seen.seen)
    assert mirrored == Counter({request_id: 2 for request_id in expected})
    assert 0 < len(expected) < len(ids)
    assert outcomes(proxy) == {"compared": 2 * len(expected), "sampled_out": 2 * (len(ids) - len(expected))}


async def test_the_mirrored_request_is_the_same_request_marked_as_a_shadow(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, at_primary), (candidate_server, at_candidate) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server))
    body = b'{"prompt": "a red fox", "n": 2}'

    await through(proxy, "POST", "/api/images?x=1&x=2", data=body,
                  headers={"X-Request-ID": "mirror-1", "Content-Type": "application/json", "X-User-Id": "u1"})
    await settle(proxy)

    (real,), (copy,) = at_primary.seen, at_candidate.seen
    assert (copy["method"], copy["path_qs"], copy["body"]) == ("POST", "/api/images?x=1&x=2", body)
    assert verify(SHADOW_KEY, copy["headers"]["X-Strangler-Shadow"], "mirror-1", now=time.time()) == "signed"
    assert copy["headers"]["X-Request-ID"] == real["headers"]["X-Request-ID"] == "mirror-1"
    assert copy["headers"]["X-User-Id"] == "u1"
    assert copy["headers"]["Content-Type"] == "application/json"
    assert "X-Strangler-Shadow" not in real["headers"]
    assert real["headers"]["Content-Length"] == str(len(body))  # the tee kept the primary's framing
    assert real["body"] == body


async def test_the_copy_carries_the_headers_the_primary_got_and_nothing_the_client_library_adds(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, at_primary), (candidate_server, at_candidate) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server), methods=["POST"])
    bare = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")  # the client sends none of these

    await through(proxy, "POST", "/api/images", data=b"raw bytes", skip_auto_headers=bare,
                  headers={"X-Request-ID": "bare-1"})  # fmt: skip
    await settle(proxy)

    (real,), (copy,) = at_primary.seen, at_candidate.seen
    assert not {name.lower() for name in bare} & {name.lower() for name in real["headers"]}
    copied = {name: value for name, value in copy["headers"].items() if name != "X-Strangler-Shadow"}
    assert copied.keys() == real["headers"].keys()
    differing = {name for name in copied if copied[name] != real["headers"][name]}
    assert differing <= {"Host"}  # each upstream gets its own Host, from its URL


async def test_requests_the_rollout_sends_to_the_candidate_are_not_shadowed(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, at_candidate) = primary, candidate
    flags = [{"header": "X-Images-Backend", "equals": "new", "use": "candidate"}]
    doc = config_dict({"legacy": url_of(primary_server), "new": url_of(candidate_server)},
                      routes=[shadow_route(flags=flags)])  # fmt: skip
    proxy = await make_proxy(doc)

    await through(proxy, "GET", "/api/images/1", headers={"X-Images-Backend": "new"})
    await settle(proxy)

    assert len(at_candidate.seen) == 1  # served, not mirrored
    assert "X-Strangler-Shadow" not in at_candidate.seen[0]["headers"]
    assert outcomes(proxy) == {}


async def test_a_route_without_shadow_never_touches_the_shadow_machinery(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, at_candidate) = primary, candidate
    route = shadow_route()
    del route["shadow"]
    proxy = await make_proxy(config_dict({"legacy": url_of(primary_server), "new": url_of(candidate_server)},
                                         routes=[route]))  # fmt: skip

    for _ in range(3):
        assert (await through(proxy, "GET", "/api/images/1"))[0] == 200

    assert at_candidate.seen == []
    assert proxy.app[SHADOW].tasks == set()
    assert outcomes(proxy) == {}


async def test_a_head_request_is_mirrored_as_a_head(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, _), (candidate_server, at_candidate) = primary, candidate
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server))

    got = await through(proxy, "HEAD", "/api/images/1")
    await settle(proxy)

    assert got == await direct(primary_server, "HEAD", "/api/images/1")
    assert [seen["method"] for seen in at_candidate.seen] == ["HEAD"]
    assert outcomes(proxy) == {"compared": 1}


async def test_a_primary_that_fails_is_not_compared_and_counts_an_error(
    make_proxy: ProxyFactory, candidate: tuple[TestServer, Service]
) -> None:
    candidate_server, _ = candidate
    proxy = await proxy_for(make_proxy, f"http://127.0.0.1:{closed_port()}", url_of(candidate_server))

    response = await proxy.client.get("/api/images/1")
    await settle(proxy)

    assert response.status == 502
    assert outcomes(proxy) == {"error": 1}
    assert proxy.app[SHADOW].in_flight == {}


async def test_a_client_that_leaves_mid_body_ends_its_shadow_with_an_error_and_frees_the_slot(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service], candidate: tuple[TestServer, Service]
) -> None:
    (primary_server, streaming), (candidate_server, mirror) = primary, candidate
    mirror.release.set()  # the candidate answers at once; only the primary's stream is held
    proxy = await proxy_for(make_proxy, url_of(primary_server), url_of(candidate_server))

    response = await proxy.client.get("/api/stream")
    assert len(await response.content.readexactly(1000)) == 1000
    await asyncio.wait_for(streaming.entered.wait(), WAIT_S)
    response.close()  # the client goes away while the primary is still streaming
    for _ in range(100):  # bounded: the proxy notices on its next write or by cancellation
        if outcome(proxy, "error"):
            break
        if not streaming.release.is_set():
            streaming.release.set()
        await asyncio.sleep(0.05)
    await settle(proxy)

    assert outcomes(proxy) == {"error": 1}
    assert proxy.app[SHADOW].in_flight == {}


async def test_a_dead_candidate_stops_being_called_after_consecutive_failures_and_every_copy_is_counted(
    make_proxy: ProxyFactory, primary: tuple[TestServer, Service]
) -> None:
    primary_server, _ = primary
    accepted = 0

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        writer.close()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    try:
        port = int(server.sockets[0].getsockname()[1])
        proxy = await proxy_for(make_proxy, url_of(primary_server), f"http://127.0.0.1:{port}")
        expected = await direct(primary_server, "GET", "/api/images/1")
        failures_to_open = BreakerPolicy().failures
        for _ in range(failures_to_open):
            assert await through(proxy, "GET", "/api/images/1") == expected
            await settle(proxy)
        tried = accepted
        assert tried >= failures_to_open  # each copy really tried the candidate until the breaker opened
        for _ in range(7):
            assert await through(proxy, "GET", "/api/images/1") == expected
            await settle(proxy)
    finally:
        server.close()
        await server.wait_closed()

    assert accepted == tried  # open: the copies were not sent at all
    assert outcomes(proxy) == {"error": failures_to_open + 7}  # and still every one is counted
