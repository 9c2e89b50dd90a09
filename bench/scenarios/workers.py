"""Scenario 2: `strangler-proxy serve --workers N`, saturation throughput with 1 and with 2 workers.

Not pinned: two workers need both cores, which they share with wrk and the upstream. The upstream here
is nginx answering a static JSON body (about a tenth of the CPU of the Python upstream), so that the
upstream does not eat the second core; still, this shows what a second worker buys on this 2-core
machine, not the scaling of a bigger one.
"""

from __future__ import annotations

from bench import configs, loadgen, nginx, upstream
from bench.model import Context, Row, ScenarioResult, start_proxy
from bench.procs import free_port
from bench.stats import paired_ratios, summarize

CONNECTIONS = 50


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    port, prefix = free_port(), ctx.workdir / "nginx-static"
    conf = nginx.write_static_conf(prefix, port=port, body=upstream.SMALL_BODY.decode())
    ctx.procs.start("s2-upstream-nginx", nginx.argv(conf, prefix), health_url=f"http://127.0.0.1:{port}/")
    up_url = f"http://127.0.0.1:{port}"
    doc = configs.fifty_routes(up_url)
    proxies = {1: start_proxy(ctx, "s2-proxy-1w", doc, cpus=None, workers=1),
               2: start_proxy(ctx, "s2-proxy-2w", doc, cpus=None, workers=2)}  # fmt: skip
    for proxy in proxies.values():
        loadgen.wrk(proxy.url(configs.ROUTED_PATH), connections=CONNECTIONS, duration_s=1, threads=2)
    rps: dict[int, list[float]] = {1: [], 2: []}
    errors = 0
    for _ in range(s.rounds):
        for workers, proxy in proxies.items():
            w = loadgen.wrk(proxy.url(configs.ROUTED_PATH), connections=CONNECTIONS,
                            duration_s=s.saturation_s, threads=2)  # fmt: skip
            rps[workers].append(w.requests_per_s)
            errors += w.errors
    ratio = summarize(paired_ratios(rps[2], rps[1]))
    result = ScenarioResult("workers", "Workers: --workers 1 vs --workers 2")
    measure = "saturation req/s, routed path; ours = 2 workers, reference = 1 worker"
    result.rows.append(Row("2 workers", measure, summarize(rps[2]), summarize(rps[1]), ratio, "ratio ≥ 1.7",
                           ratio.median >= 1.7, "req/s"))  # fmt: skip
    result.raw = {"rps": {str(k): v for k, v in rps.items()}, "errors": errors}
    result.notes.append(
        "SO_REUSEPORT pre-fork: the kernel spreads connections over the workers. Not pinned: on 2 cores the "
        "two workers share the CPUs with wrk and the upstream (static nginx here), so the second worker "
        "cannot double throughput."
    )
    return result
