"""Scenario 4: the migration's before/after: 40 users generating images through the proxy.

Before: rollout 0 %, every request to the legacy stub, which renders one image at a time
(LEGACY_IMAGE_DELAY_S=1). After: rollout 100 %, the image service with the same 1 s per image
(IMAGESERVICE_LOCAL_DELAY_S=1) and 64 generations at once. Each arm of each round gets fresh
processes (a legacy queue left from the last arm would slow the next one). Not pinned.
"""

from __future__ import annotations

from bench import closedloop, configs
from bench.model import Context, Row, ScenarioResult, start_proxy
from bench.procs import free_port, python
from bench.stats import paired_ratios, summarize

USERS = 40
ARMS = (("before", 0.0), ("after", 100.0))


def run(ctx: Context) -> ScenarioResult:
    s = ctx.settings
    per_s: dict[str, list[float]] = {"before": [], "after": []}
    p95: dict[str, list[float]] = {"before": [], "after": []}
    raw: list[dict[str, object]] = []
    for round_no in range(s.rounds):
        for arm, percent in ARMS:
            r = _one_arm(ctx, f"r{round_no}-{arm}", percent, s.migration_s)
            per_s[arm].append(r.per_second)
            p95[arm].append(r.p95_s())
            raw.append({"round": round_no, "arm": arm, "completed": len(r.completed),
                        "in_flight_at_end": len(r.censored), "errors": r.errors,
                        "images_per_s": r.per_second, "p95_s": r.p95_s()})  # fmt: skip
    result = ScenarioResult("migration", "The migration's before/after (40 users, 1 s per image)")
    speedup = summarize(paired_ratios(per_s["after"], per_s["before"]))
    result.rows.append(Row("4 before/after", "images per second; ours = 100 % image service, reference = 0 %",
                           summarize(per_s["after"]), summarize(per_s["before"]), speedup, "ratio ≥ 10",
                           speedup.median >= 10, "img/s"))  # fmt: skip
    cut = summarize(paired_ratios(p95["after"], p95["before"]))
    result.rows.append(Row("4 before/after", "p95 latency; ours = 100 % image service, reference = 0 %",
                           summarize(p95["after"]), summarize(p95["before"]), cut, "ratio ≤ 0.1",
                           cut.median <= 0.1, "s"))  # fmt: skip
    result.raw = {"arms": raw, "users": USERS, "window_s": s.migration_s}
    result.charts["before_after"] = {
        "before (0 %, legacy)": {"images_per_s": summarize(per_s["before"]).median,
                                 "p95_s": summarize(p95["before"]).median},
        "after (100 %, image service)": {"images_per_s": summarize(per_s["after"]).median,
                                         "p95_s": summarize(p95["after"]).median},
    }  # fmt: skip
    errors = sum(sum(a["errors"].values()) for a in raw if isinstance(a["errors"], dict))
    result.notes.append(
        f"{s.migration_s:.0f} s window per arm; a request still running at the end of the window counts "
        f"at its age then, so the 'before' p95 is a lower bound and the p95 ratio is conservative. "
        f"Errors over all arms: {errors}."
    )
    return result


def _one_arm(ctx: Context, name: str, percent: float, window_s: float) -> closedloop.ClosedLoopResult:
    legacy_port, service_port = free_port(), free_port()
    legacy = ctx.procs.start(
        f"s4-{name}-legacy",
        [python(), "-m", "legacy_stub", "--host", "127.0.0.1", "--port", str(legacy_port)],
        env={"LEGACY_IMAGE_DELAY_S": "1"}, health_url=f"http://127.0.0.1:{legacy_port}/healthz",
    )  # fmt: skip
    service = ctx.procs.start(
        f"s4-{name}-imageservice",
        [python(), "-m", "imageservice", "serve", "--host", "127.0.0.1", "--port", str(service_port)],
        env={"IMAGESERVICE_LOCAL_DELAY_S": "1", "IMAGESERVICE_MAX_CONCURRENCY": "64",
             "IMAGESERVICE_MAX_QUEUE": "256", "IMAGESERVICE_DATA_DIR": str(ctx.workdir / f"{name}-data")},
        health_url=f"http://127.0.0.1:{service_port}/healthz",
    )  # fmt: skip
    doc = configs.migration(f"http://127.0.0.1:{legacy_port}", f"http://127.0.0.1:{service_port}",
                            percent=percent)  # fmt: skip
    proxy = start_proxy(ctx, f"s4-{name}-proxy", doc, cpus=None)
    try:
        return closedloop.run(proxy.url("/api/images"), users=USERS, window_s=window_s)
    finally:
        for proc in (proxy.proc, service, legacy):
            ctx.procs.stop(proc, kill=True)  # no drain: 40 queued images would take 40 s
