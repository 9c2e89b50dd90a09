"""A throwaway micro-benchmark of the public listener's server alone, not part of `make bench` or a test.

A trivial handler answering `200 ok`, served by proxy.dataplane.http1 (asyncio.Protocol + httptools),
by aiohttp's web server (its low-level Server, and an Application with one catch-all route as the proxy
serves today), and nginx returning a static 200 as the reference:

    .venv/bin/python -m bench.micro_server [--duration 10] [--rounds 3] [--connections 50]

Each server runs alone on CPU 0 (taskset), on uvloop, without access log; wrk runs on CPU 1. Per round
and server (interleaved, so every server sees the same machine): a 2-second warm-up, then a measured wrk
run; CPU per request is the server's utime+stime (/proc) over the measured run divided by the requests
wrk completed. Medians of the rounds are reported, with ratios to nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from bench import nginx
from bench.loadgen import wrk
from bench.procs import Procs, free_port, python

SERVER_CPU, LOAD_CPU = "0", "1"
KINDS = ("http1", "aiohttp_server", "aiohttp_app", "nginx")


def serve(kind: str, port: int) -> None:
    """Run one Python server (the child process of a measurement) until it is stopped."""
    import uvloop

    uvloop.run(_serve(kind, port))


async def _serve(kind: str, port: int) -> None:
    from aiohttp import web

    from proxy.config.resilience import Limits
    from proxy.dataplane.http1 import Http1Server, Request, Responder

    if kind == "http1":

        async def handle(request: Request, responder: Responder) -> None:
            await responder.send(200, [("Content-Type", "text/plain")], b"ok")

        limits = Limits()
        server = Http1Server(handle, limits=lambda: limits, max_connections=lambda: 4096)
        listener = await asyncio.get_running_loop().create_server(server.protocol_factory, "127.0.0.1", port)
        await listener.serve_forever()
        return

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b"ok", content_type="text/plain")

    runner: web.BaseRunner
    if kind == "aiohttp_server":
        runner = web.ServerRunner(web.Server(answer), access_log=None)
    else:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def measure(
    kind: str, procs: Procs, workdir: Path, *, duration_s: float, connections: int
) -> tuple[float, float]:
    """(requests per second, CPU microseconds per request) of one server under wrk."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    if kind == "nginx":
        prefix = workdir / f"nginx-{port}"
        argv = nginx.argv(nginx.write_static_conf(prefix, port=port, body="ok"), prefix)
    else:
        argv = [python(), "-m", "bench.micro_server", "--serve", kind, "--port", str(port)]
    proc = procs.start(kind, argv, cpus=SERVER_CPU, health_url=url)
    try:
        wrk(url, connections=connections, duration_s=2, cpus=LOAD_CPU)  # warm-up
        before = proc.cpu()
        result = wrk(url, connections=connections, duration_s=duration_s, cpus=LOAD_CPU)
        cpu = proc.cpu() - before
    finally:
        procs.stop(proc)
    if result.errors:
        raise RuntimeError(f"{kind}: {result.errors} errors under load")
    return result.requests_per_s, cpu / result.requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro_server")
    parser.add_argument("--serve", choices=KINDS[:3], help="run one server (used by the measurement)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    kinds = args.kinds.split(",")
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    costs: dict[str, list[float]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="micro-server-") as tmp, Procs(Path(tmp)) as procs:
        for round_no in range(1, args.rounds + 1):
            for kind in kinds:
                rate, cost = measure(kind, procs, Path(tmp), duration_s=args.duration,
                                     connections=args.connections)  # fmt: skip
                rates[kind].append(rate)
                costs[kind].append(cost)
                print(f"round {round_no} {kind:15} {rate:9.0f} req/s {cost:6.1f} µs CPU/request", flush=True)
    ref = "nginx" if "nginx" in kinds else kinds[0]
    print(f"\nmedians of {args.rounds} rounds; ratios to {ref}")
    print(f"{'server':15} {'req/s':>9} {'ratio':>6} {'µs CPU/req':>11} {'ratio':>6}")
    for kind in kinds:
        rate, cost = statistics.median(rates[kind]), statistics.median(costs[kind])
        rate_ratio = rate / statistics.median(rates[ref])
        cost_ratio = cost / statistics.median(costs[ref])
        print(f"{kind:15} {rate:9.0f} {rate_ratio:6.2f} {cost:11.1f} {cost_ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
