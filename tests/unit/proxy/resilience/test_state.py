"""Resilience: the guards, breakers and fallback plans of one app, following reloads, and the effective
rollout percent it owns (read by the routing step, the `strangler_rollout_percent` gauge and the admin API).
No sockets: configs come from YAML text through the loader, time from a clock the tests move."""

from __future__ import annotations

import textwrap

from prometheus_client import CollectorRegistry

from proxy.client import UpstreamError
from proxy.config import Config, parse_config
from proxy.metrics import ProxyMetrics
from proxy.resilience.fallback import KINDS, FallbackPolicy
from proxy.resilience.guard import GuardPolicy
from proxy.resilience.state import NO_PLAN, Resilience, RoutePlan
from proxy.routing import Decision, RequestFacts, RouteTable, compile_routes, decide

BASE = textwrap.dedent("""\
    version: 1
    upstreams:
      legacy: {url: "http://127.0.0.1:8081"}
      new: {url: "http://127.0.0.1:8082", circuit: {failures: 2, open_s: 5, max_open_s: 20}}
    default_upstream: legacy
    routes:
      - name: images
        match: {path_prefix: /api/images}
        primary: legacy
        candidate: new
        rollout: {percent: 25, sticky_key: ["header:X-User"], on_missing_key: candidate}
        flags: [{header: X-Canary, equals: "1", use: candidate}]
        ownership: [{path_regex: "^/api/images/new-", owner: candidate}]
        fallback: {when: [connect_error, 5xx], max_body_bytes: 4096}
        guard: {max_error_rate: 0.5, min_requests: 2, window_s: 60}
      - name: static
        match: {path_prefix: /static}
        primary: legacy
    """)
WITHOUT_IMAGES = BASE[: BASE.index("  - name: images")] + BASE[BASE.index("  - name: static") :]
CONNECTION_FAILURE = UpstreamError("reset", timeout=False, detail="reset", connection_failure=True)
SLOW = UpstreamError("timeout", timeout=True, detail="no head in time")  # slow, not unreachable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(text: str = BASE) -> Config:
    return parse_config(text)


def following(text: str = BASE) -> tuple[Resilience, CollectorRegistry, Clock]:
    registry, clock = CollectorRegistry(), Clock()
    resilience = Resilience(ProxyMetrics(registry), clock=clock)
    resilience.follow(config(text))
    return resilience, registry, clock


def trip_guard(resilience: Resilience, route: str = "images") -> None:
    for _ in range(2):  # min_requests 2, both errors: a rate of 1 > 0.5
        resilience.candidate_outcome(route, error=True)
    assert resilience.guards.is_tripped(route)


def decision(table: RouteTable, path: str, **headers: str) -> Decision:
    facts = RequestFacts("GET", path, headers, {}, {}, "127.0.0.1", "req-1")
    return decide(table, facts)


# -- following the configuration ----------------------------------------------------------------------
def test_follow_compiles_each_routes_fallback_and_guard_and_declares_its_fallback_series() -> None:
    resilience, registry, _ = following()

    assert resilience.plan("images") == RoutePlan(
        fallback=FallbackPolicy(when=frozenset({"connect_error", "5xx"}), max_body_bytes=4096),
        guard=GuardPolicy(max_error_rate=0.5, min_requests=2, window_s=60.0),
    )
    assert resilience.plan("static") == NO_PLAN  # no candidate: nothing to fall back from or guard
    assert resilience.plan("no-such-route") == NO_PLAN
    for kind in KINDS:
        labels = {"route": "images", "reason": kind}
        assert registry.get_sample_value("strangler_fallbacks_total", labels) == 0
    static = {"route": "static", "reason": "5xx"}
    assert registry.get_sample_value("strangler_fallbacks_total", static) is None


def test_a_tripped_guard_survives_a_reload_that_leaves_its_route_unchanged() -> None:
    resilience, registry, _ = following()
    trip_guard(resilience)

    elsewhere = BASE.replace("path_prefix: /static", "path_prefix: /assets")
    resilience.follow(config(elsewhere.replace('8081"}', '8081", timeout_s: 5}')))

    assert resilience.guards.is_tripped("images")
    assert registry.get_sample_value("strangler_guard_tripped", {"route": "images"}) == 1


def test_an_edit_of_the_route_resets_its_guard() -> None:
    resilience, registry, _ = following()
    trip_guard(resilience)

    resilience.follow(config(BASE.replace("percent: 25", "percent: 30")))

    assert not resilience.guards.is_tripped("images")
    assert registry.get_sample_value("strangler_guard_tripped", {"route": "images"}) == 0
    assert resilience.plan("images").guard is not None


def test_a_removed_route_loses_its_guard_its_plan_and_its_series() -> None:
    resilience, registry, _ = following()
    trip_guard(resilience)

    resilience.follow(config(WITHOUT_IMAGES))

    assert resilience.guards.get("images") is None
    assert resilience.plan("images") == NO_PLAN
    assert registry.get_sample_value("strangler_guard_tripped", {"route": "images"}) is None


# -- steering ----------------------------------------------------------------------------------------
def test_a_tripped_guard_sends_what_the_route_gives_its_candidate_to_the_primary() -> None:
    resilience, _, _ = following()
    table = compile_routes(config())
    flagged = decision(table, "/api/images/cat", **{"X-Canary": "1"})
    keyless = decision(table, "/api/images/cat")
    assert (flagged.role, flagged.reason) == ("candidate", "flag")
    assert (keyless.role, keyless.reason) == ("candidate", "missing_key")
    assert resilience.steer(flagged) is flagged  # not tripped: as decided

    trip_guard(resilience)

    for decided in (flagged, keyless):
        steered = resilience.steer(decided)
        assert steered == Decision("images", "legacy", "primary", decided.reason)
        assert steered.compiled is decided.compiled
    resilience.reset_guard("images")
    assert resilience.steer(flagged) is flagged


def test_data_only_the_candidate_holds_is_read_there_even_while_the_guard_is_tripped() -> None:
    resilience, _, _ = following()
    table = compile_routes(config())
    owned = decision(table, "/api/images/new-123")
    assert (owned.role, owned.reason) == ("candidate", "owner")
    trip_guard(resilience)

    assert resilience.steer(owned) is owned


def test_primary_and_default_decisions_are_never_steered() -> None:
    resilience, _, _ = following()
    table = compile_routes(config())
    trip_guard(resilience)
    for decided in (decision(table, "/static/app.js"), decision(table, "/elsewhere")):
        assert resilience.steer(decided) is decided


# -- the effective percent -------------------------------------------------------------------------------
def test_the_effective_percent_is_the_configured_one_zero_without_candidate_and_zero_while_tripped() -> None:
    resilience, _, _ = following()
    table = compile_routes(config())
    images, static = table.route("images"), table.route("static")
    assert images is not None
    assert static is not None

    assert (resilience.effective_percent(images), resilience.effective_percent(static)) == (25.0, 0.0)
    trip_guard(resilience)
    assert resilience.effective_percent(images) == 0.0
    assert resilience.reset_guard("images") is True
    assert resilience.effective_percent(images) == 25.0
    assert resilience.reset_guard("images") is False
    assert resilience.reset_guard("static") is None  # no guard at all
    assert resilience.effective_percents(table) == [("images", 25.0), ("static", 0.0)]


def test_the_rollout_gauge_reads_the_effective_percent_at_each_scrape() -> None:
    registry, clock = CollectorRegistry(), Clock()
    metrics = ProxyMetrics(registry)
    resilience = Resilience(metrics, clock=clock)
    serving = [compile_routes(config())]  # what the config store's current table would be
    resilience.follow(config())
    metrics.rollout_from(lambda: resilience.effective_percents(serving[0]))

    def gauge(route: str) -> float | None:
        return registry.get_sample_value("strangler_rollout_percent", {"route": route})

    assert (gauge("images"), gauge("static")) == (25.0, 0.0)
    trip_guard(resilience)
    assert gauge("images") == 0.0
    resilience.reset_guard("images")
    assert gauge("images") == 25.0

    reloaded = config(WITHOUT_IMAGES)
    resilience.follow(reloaded)
    serving[0] = compile_routes(reloaded)
    assert (gauge("images"), gauge("static")) == (None, 0.0)


# -- the breakers ----------------------------------------------------------------------------------------
def test_settled_calls_move_the_breaker_and_export_its_state_and_transitions() -> None:
    resilience, registry, clock = following()

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"upstream": "new", **labels})

    assert sample("strangler_circuit_open") == 0
    assert sample("strangler_circuit_transitions_total", state="open") == 0  # declared at follow()
    resilience.settle("new", CONNECTION_FAILURE)
    assert sample("strangler_circuit_open") == 0
    resilience.settle("new", CONNECTION_FAILURE)  # circuit.failures: 2
    assert sample("strangler_circuit_open") == 1
    assert sample("strangler_circuit_transitions_total", state="open") == 1
    assert resilience.admit("new") is False
    assert sample("strangler_circuit_rejected_total") == 1

    clock.now += 5  # open_s
    assert resilience.admit("new") is True
    assert sample("strangler_circuit_transitions_total", state="half_open") == 1
    resilience.settle("new", SLOW)  # a slow probe says nothing: no transition
    assert sample("strangler_circuit_open") == 1
    assert resilience.admit("new") is True
    resilience.settle("new", None)
    assert sample("strangler_circuit_open") == 0
    assert sample("strangler_circuit_transitions_total", state="closed") == 1
    assert sample("strangler_circuit_transitions_total", state="open") == 1


def test_settling_a_call_to_an_upstream_without_a_breaker_changes_nothing() -> None:
    resilience, registry, _ = following()
    error: UpstreamError = CONNECTION_FAILURE
    for _ in range(5):
        resilience.settle("nowhere", error)
    assert resilience.admit("nowhere") is True
    assert registry.get_sample_value("strangler_circuit_open", {"upstream": "nowhere"}) is None


def test_a_reload_keeps_an_open_breaker_unless_its_upstream_is_re_pointed() -> None:
    resilience, registry, _ = following()
    for _ in range(2):
        resilience.settle("new", CONNECTION_FAILURE)

    resilience.follow(config(BASE.replace("percent: 25", "percent: 30")))
    assert registry.get_sample_value("strangler_circuit_open", {"upstream": "new"}) == 1

    resilience.follow(config(BASE.replace("127.0.0.1:8082", "127.0.0.1:9082")))
    assert registry.get_sample_value("strangler_circuit_open", {"upstream": "new"}) == 0
    assert resilience.admit("new") is True
