"""Scenario 5 (`make soak`, on demand): mixed traffic at a fixed rate for 10 minutes through the proxy,
with a 25 % rollout, POSTs shadowed at 100 % and routes.yaml rewritten every 30 s.

Must hold: zero errors seen by the clients, every reload accepted, and the RSS of every process flat
(growth ≤ 10 % from the end of the first minute to the end). Traffic: hey at fixed rates (GET to a
plain upstream through a route, GET to the monolith's catalog by default, POST image generations).
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

from bench import configs, loadgen
from bench.model import Context, Row, ScenarioResult, start_proxy, start_upstream
from bench.parse import HeyResult
from bench.procs import Proc, free_port, python
from bench.stats import growth_percent, summarize

RELOAD_EVERY_S = 30.0
SAMPLE_EVERY_S = 10.0
TRAFFIC = (  # name, path, method, rate (req/s), concurrency
    ("static", "/static/items", "GET", 100.0, 4),
    ("catalog", "/api/catalog", "GET", 30.0, 2),
    ("images", "/api/images", "POST", 4.0, 2),
)
IMAGE_BODY = '{"prompt": "a fox in the snow", "n": 1, "size": "256x256"}'


def soak_config(legacy: str, service: str, static: str, *, percent: float) -> dict[str, Any]:
    doc = configs.migration(legacy, service, percent=percent)
    doc["upstreams"]["static"] = configs.upstream(static)
    images = doc["routes"][0]
    images["shadow"] = {"percent": 100, "methods": ["POST"], "max_per_minute": 6000, "max_in_flight": 32,
                        "timeout_s": 30,
                        "compare": {"status": True, "headers": ["content-type"],
                                    "ignore": ["id", "created", "images[*].url", "images[*].name",
                                               "images[*].sha256", "images[*].bytes"]}}  # fmt: skip
    doc["routes"].append({"name": "static", "match": {"path_prefix": "/static"}, "primary": "static"})
    return doc


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    legacy_port, service_port = free_port(), free_port()
    legacy = ctx.procs.start(
        "s5-legacy", [python(), "-m", "legacy_stub", "--host", "127.0.0.1", "--port", str(legacy_port)],
        env={"LEGACY_IMAGE_DELAY_S": "0.02"}, health_url=f"http://127.0.0.1:{legacy_port}/healthz",
    )  # fmt: skip
    service = ctx.procs.start(
        "s5-imageservice",
        [python(), "-m", "imageservice", "serve", "--host", "127.0.0.1", "--port", str(service_port)],
        env={"IMAGESERVICE_LOCAL_DELAY_S": "0.02", "IMAGESERVICE_MAX_CONCURRENCY": "16",
             "IMAGESERVICE_DATA_DIR": str(ctx.workdir / "imageservice")},
        health_url=f"http://127.0.0.1:{service_port}/healthz",
    )  # fmt: skip
    static, static_url = start_upstream(ctx, "s5-static", cpus=None)
    urls = (f"http://127.0.0.1:{legacy_port}", f"http://127.0.0.1:{service_port}", static_url)
    proxy = start_proxy(ctx, "s5-proxy", soak_config(*urls, percent=25), cpus=None)
    config_path = ctx.workdir / "s5-proxy.routes.yaml"
    procs: dict[str, Proc] = {"proxy": proxy.proc, "legacy": legacy, "imageservice": service,
                              "upstream": static}  # fmt: skip
    running = [
        (name, loadgen.hey_start(proxy.url(path), rate=rate, concurrency=conc, duration_s=s.soak_s,
                                 method=method, body=IMAGE_BODY if method == "POST" else None, timeout_s=30))
        for name, path, method, rate, conc in TRAFFIC
    ]  # fmt: skip
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in procs}
    started = time.monotonic()
    next_reload, next_sample, edits = started + RELOAD_EVERY_S, started, 0
    while time.monotonic() - started < s.soak_s:
        now = time.monotonic()
        if now >= next_sample:
            for name, proc in procs.items():
                samples[name].append((now - started, proc.rss()))
            next_sample += SAMPLE_EVERY_S
        if now >= next_reload:
            edits += 1
            config_path.write_text(configs.dump(soak_config(*urls, percent=30 if edits % 2 else 25)))
            next_reload += RELOAD_EVERY_S
        time.sleep(0.5)
    results = {name: loadgen.hey_finish(r, timeout_s=90) for name, r in running}
    for name, proc in procs.items():
        samples[name].append((time.monotonic() - started, proc.rss()))
    reloads = reload_counts(proxy.admin_ports[0])
    return _result(s.soak_s, results, samples, reloads, edits)


def _result(duration_s: float, results: dict[str, HeyResult], samples: dict[str, list[tuple[float, int]]],
            reloads: dict[str, float], edits: int) -> ScenarioResult:  # fmt: skip
    result = ScenarioResult("soak", f"Soak: {duration_s / 60:.0f} min of mixed traffic, reload every 30 s")
    errors = sum(r.errors for r in results.values())
    responses = sum(r.responses for r in results.values())
    result.rows.append(Row("5 soak", f"client errors over {responses} responses", summarize([errors]),
                           None, None, "0", errors == 0, ""))  # fmt: skip
    failed = reloads.get("failure", 0.0)
    measure = f"config reloads failed ({edits} edits, {reloads.get('success', 0):.0f} successful attempts)"
    result.rows.append(Row("5 soak", measure, summarize([failed]), None, None, "0", failed == 0, ""))
    for name, series in samples.items():
        base = next((rss for t, rss in series if t >= min(60.0, duration_s / 4)), series[0][1])
        growth = growth_percent(base, series[-1][1])
        measure = f"RSS growth of {name} ({base / 2**20:.0f} → {series[-1][1] / 2**20:.0f} MB)"
        row = Row("5 soak", measure, summarize([growth]), None, None, "≤ 10 %", growth <= 10, "%")
        result.rows.append(row)
    result.raw = {"hey": {name: {"rps": r.requests_per_s, "status": r.status_counts, "errors": r.error_counts,
                                 "p50_s": r.latency_percentiles_s.get(50),
                                 "p99_s": r.latency_percentiles_s.get(99)}
                          for name, r in results.items()},
                  "rss_samples": samples, "reloads": reloads, "edits": edits}  # fmt: skip
    return result


def reload_counts(admin_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("strangler_config_reloads_total{"):
            labels, _, value = line.rpartition(" ")
            out[labels.split('result="', 1)[1].split('"', 1)[0]] = float(value)
    return out
