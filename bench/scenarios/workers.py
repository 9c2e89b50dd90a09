"""Scenario 2: `strangler-proxy serve --workers N`, saturation throughput with 1 and with 2 workers.

Not pinned: two workers need both cores, which they share with wrk and the upstream. The upstream here
is nginx answering a static JSON body (about a tenth of the CPU of the Python upstream), so that the
upstream does not eat the second core; still, this shows what a second worker buys on this 2-core
machine, not the scaling of a bigger one.
"""

from __future__ import annotations

import os
import resource

from bench import configs, loadgen, nginx, upstream
from bench.model import Context, Row, ScenarioResult, start_proxy
from bench.procs import free_port
from bench.stats import paired_ratios, summarize

CONNECTIONS = 50


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    port, prefix = free_port(), ctx.workdir / "nginx-static"
    conf = nginx.write_static_conf(prefix, port=port, body=upstream.SMALL_BODY.decode())
    static = ctx.procs.start("s2-upstream-nginx", nginx.argv(conf, prefix), health_url=f"http://127.0.0.1:{port}/")
    up_url = f"http://127.0.0.1:{port}"
    doc = configs.fifty_routes(up_url)
    proxies = {1: start_proxy(ctx, "s2-proxy-1w", doc, cpus=None, workers=1),
               2: start_proxy(ctx, "s2-proxy-2w", doc, cpus=None, workers=2)}  # fmt: skip
    for proxy in proxies.values():
        loadgen.wrk(proxy.url(configs.ROUTED_PATH), connections=CONNECTIONS, duration_s=1, threads=2)
    rps: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[str, list[float]] = {"proxy": [], "load": []}  # µs per request, 1 worker's rounds
    errors = 0
    for _ in range(s.rounds):
        for workers, proxy in proxies.items():
            before = (proxy.proc.cpu(), static.cpu(), _children_cpu())
            w = loadgen.wrk(proxy.url(configs.ROUTED_PATH), connections=CONNECTIONS,
                            duration_s=s.saturation_s, threads=2)  # fmt: skip
            rps[workers].append(w.requests_per_s)
            errors += w.errors
            if workers == 1 and w.requests:
                cpu["proxy"].append((proxy.proc.cpu() - before[0]) / w.requests * 1e6)
                load = (static.cpu() - before[1]) + (_children_cpu() - before[2])  # the upstream and wrk
                cpu["load"].append(load / w.requests * 1e6)
    ratio = summarize(paired_ratios(rps[2], rps[1]))
    result = ScenarioResult("workers", "Workers: --workers 1 vs --workers 2")
    measure = "saturation req/s, routed path; ours = 2 workers, reference = 1 worker"
    result.rows.append(Row("2 workers", measure, summarize(rps[2]), summarize(rps[1]), ratio, "ratio ≥ 1.7",
                           ratio.median >= 1.7, "req/s"))  # fmt: skip
    result.raw = {"rps": {str(k): v for k, v in rps.items()}, "errors": errors, "cpu_us_per_request": cpu}
    result.notes.append(ceiling_note(summarize(cpu["proxy"]).median, summarize(cpu["load"]).median,
                                     cores=len(os.sched_getaffinity(0)), measured=ratio.median))  # fmt: skip
    result.notes.append(
        "SO_REUSEPORT pre-fork: the kernel spreads connections over the workers. Not pinned: on 2 cores the "
        "two workers share the CPUs with wrk and the upstream (static nginx here), so the second worker "
        "cannot double throughput."
    )
    return result


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ceiling_note(proxy_us: float, load_us: float, *, cores: int, measured: float) -> str:
    """What a second worker can buy on this machine at best: with one worker the proxy's core is the
    limit (the load runs beside it); with every core busy, each request costs the proxy's CPU plus the
    load's (wrk and the upstream) out of `cores` cores."""
    if proxy_us <= 0 or load_us < 0:
        return "The CPU per request of the proxy and the load could not be measured in this run."
    ceiling = min(2.0, cores * proxy_us / (proxy_us + load_us))
    return (
        f"The ceiling on this machine: one worker is bound by its core ({proxy_us:.0f} µs of CPU per "
        f"request), while wrk and the upstream spend {load_us:.0f} µs per request on the other; with two "
        f"workers every request costs {proxy_us + load_us:.0f} µs of the {cores} cores' time, so two "
        f"workers can serve at most {ceiling:.2f}× one worker's rate here (measured: {measured:.2f}×). A "
        "target of 1.7× needs cores to spare for the load, or (on 2 cores) a load that costs less than "
        f"{proxy_us * (2 - 1.7) / 1.7:.0f} µs per request."
    )
