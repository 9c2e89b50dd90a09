"""Scenario 6: the pure routing decision for 50 routes as a share of one proxied request's CPU.

The decision is timed in-process (bench.routing_cost); the CPU of one proxied request is the proxy
process's CPU time over a saturation run divided by the requests served, on the path that matches the
last of the 50 routes. py-spy then samples the proxy under the same load to show where the time goes.
"""

from __future__ import annotations

from bench import configs, loadgen, profiling, routing_cost
from bench.model import Context, Row, ScenarioResult, start_proxy, start_upstream
from bench.stats import summarize

CONNECTIONS = 50


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    _, up_url = start_upstream(ctx, "s6-upstream", cpus=s.load_cpus)
    proxy = start_proxy(ctx, "s6-proxy", configs.fifty_routes(up_url), cpus=s.sut_cpus)
    url = proxy.url(configs.ROUTED_PATH)
    loadgen.wrk(url, connections=CONNECTIONS, duration_s=1, cpus=s.load_cpus)
    decide_s: list[float] = []
    per_request_s: list[float] = []
    for _ in range(s.rounds):
        decide_s.append(routing_cost.decision_seconds(configs.ROUTED_PATH))
        cpu = proxy.proc.cpu()
        w = loadgen.wrk(url, connections=CONNECTIONS, duration_s=s.saturation_s, cpus=s.load_cpus)
        per_request_s.append((proxy.proc.cpu() - cpu) / max(1, w.requests))
    profile = profiling.record(
        proxy.proc.pid, duration_s=s.profile_s, out=ctx.workdir / "profile.raw",
        load=lambda: loadgen.wrk(url, connections=CONNECTIONS, duration_s=s.profile_s, cpus=s.load_cpus),
    )  # fmt: skip
    shares = [d / r * 100 for d, r in zip(decide_s, per_request_s, strict=True)]
    decide, per_request = summarize(decide_s).median, summarize(per_request_s).median
    result = ScenarioResult("routing", "Routing decision: share of one proxied request's CPU")
    measure = (f"decide() over 50 routes ({decide * 1e6:.1f} µs of {per_request * 1e6:.0f} µs CPU per "
               f"request; py-spy charges {profile.share('routing decision') * 100:.1f} % of samples "
               "to routing)")  # fmt: skip
    result.rows.append(Row("6 routing decision", measure, summarize(shares), None, None, "report", None, "%"))
    result.raw = {"decide_s": decide_s, "cpu_per_request_s": per_request_s, "share_percent": shares,
                  "unrouted_decide_s": routing_cost.decision_seconds(configs.UNROUTED_PATH),
                  "profile": {"samples": profile.samples, "by_category": profile.by_category,
                              "top_functions": profile.top_functions}}  # fmt: skip
    result.charts["profile"] = dict(profile.by_category)
    result.notes.append(profile_note(profile))
    result.notes.append(
        "Routing is indexed by first path segment (proxy/routing/segments.py, index_by_segment): "
        "a request tries only "
        "the prefix routes under its first segment and the routes that can match anything, in table order. "
        "Before the index, the linear first-match scan of 50 routes cost 17.7 µs per decision, about 10.6 % "
        "of a proxied request's CPU (py-spy: 13 % of samples), the largest item of our own code."
    )
    result.notes.append(gap_note(profile, per_request))
    return result


def gap_note(profile: profiling.ProfileSummary, per_request_s: float) -> str:
    """What limits the proxy against nginx, and what would close the gap (numbers from this run)."""
    share = {name: value * 100 for name, value in profile.by_category}
    wire = share.get("http1 server (client side)", 0) + share.get("upstream client (httptools)", 0)
    own = ("routing decision", "access log", "metrics", "proxy handler + forwarding", "shadow")
    ours = sum(share.get(k, 0) for k in own)
    return (
        f"What limits it: one proxied request costs about {per_request_s * 1e6:.0f} µs of CPU on one core. "
        f"{wire:.0f} % of the samples are the protocol-level data plane (the http1 server and the "
        "upstream client on llhttp, most of it in the socket writes), "
        f"{share.get('asyncio / event loop', 0):.0f} % the event loop, and {ours:.0f} % our own per-request "
        f"work (routing {share.get('routing decision', 0):.0f} %, "
        f"access log {share.get('access log', 0):.0f} %, metrics {share.get('metrics', 0):.0f} %, "
        "handler and forwarding "
        f"{share.get('proxy handler + forwarding', 0):.0f} %). What is left between this and nginx is "
        "Python's cost per event-loop callback and per call (one task per request, the Trip, the header "
        "copies, the coroutine layers between the handler and the socket); the access line is rendered "
        "from a template and written in batches (`--access-log-flush-ms`, default 100 ms). What would "
        "close more of it: more workers (`--workers auto`, scenario 2) for throughput, and for CPU parity "
        "a compiled data plane (the http1 server and upstream client compiled with mypyc or Cython, or "
        "nginx/Envoy forwarding with this process as its control plane)."
    )


def profile_note(profile: profiling.ProfileSummary) -> str:
    cats = ", ".join(f"{name} {share * 100:.0f} %" for name, share in profile.by_category)
    top = "; ".join(f"`{name}` {share * 100:.1f} %" for name, share in profile.top_functions[:8])
    return (f"Where the proxy's time goes at saturation on the routed path (py-spy, {profile.samples} "
            f"samples of Python frames; C code in uvloop and aiohttp's parsers is charged to its Python "
            f"caller): {cats}. Innermost frames: {top}.")  # fmt: skip
