from __future__ import annotations

from pathlib import Path

from bench.baseline import Baseline
from bench.scenarios.passthrough import WITH_BASELINE, _rows, baseline_note, baseline_rows, burst_note
from bench.stats import summarize

BASELINE = Baseline("528c3f2", "528c3f22d4426440fce4f33be722fe5eba50c94d", "528c3f2", Path("/repo/var/b"),
                    imports={"proxy": "/repo/var/b/proxy/__init__.py"})  # fmt: skip


def _round(rps: float, cpu_us: float, p50_ms: float, p99_ms: float) -> dict[str, float]:
    p50, p99 = p50_ms / 1000, p99_ms / 1000
    return {"rps": rps, "requests": rps, "errors": 0, "cpu_per_request_s": cpu_us / 1e6,
            "p50_s": p50, "p90_s": p50, "p99_s": p99, "p999_s": p99}  # fmt: skip


def _measured() -> tuple[dict[str, list[dict[str, float]]], dict[str, list[dict[str, float]]]]:
    figures = {  # per round: (req/s, CPU µs per request, p50 ms, p99 ms)
        "direct": [(20000, 20, 0.5, 1.0), (21000, 20, 0.5, 1.0)],
        "proxy_unrouted": [(6000, 300, 1.4, 3.0), (6600, 330, 1.6, 3.2)],
        "proxy_routed": [(5000, 350, 1.5, 3.5), (5500, 360, 1.7, 3.7)],
        "baseline_unrouted": [(5000, 400, 1.5, 3.5), (6000, 300, 1.6, 4.0)],
        "baseline_routed": [(4000, 500, 1.8, 4.0), (5000, 400, 2.0, 4.0)],
        "nginx": [(28000, 50, 0.8, 1.5), (29000, 50, 0.8, 1.5)],
    }
    rounds = {name: [_round(*r) for r in values] for name, values in figures.items()}
    return rounds, rounds


def test_the_baseline_runs_beside_the_proxy_in_every_round() -> None:
    assert WITH_BASELINE.index("baseline_unrouted") == WITH_BASELINE.index("proxy_routed") + 1
    assert {"direct", "proxy_unrouted", "proxy_routed", "nginx"} < set(WITH_BASELINE)


def test_the_baseline_rows_give_both_figures_and_the_per_round_ratio_now_over_then() -> None:
    sat, paced = _measured()
    rows = {row.measure: row for row in baseline_rows(sat, paced, "528c3f2")}
    who = "ours = now, reference = baseline 528c3f2"
    assert len(rows) == 8

    saturation = rows[f"saturation req/s, 50 conns, non-routed; {who}"]
    assert saturation.ours == summarize([6000, 6600])
    assert saturation.reference == summarize([5000, 6000])
    assert saturation.ratio == summarize([6000 / 5000, 6600 / 6000])  # per round, not a ratio of medians
    assert saturation.unit == "req/s"
    assert saturation.met is None

    cpu = rows[f"CPU per request at 500 req/s, routed; {who}"]
    assert cpu.ratio is not None
    assert round(cpu.ratio.low, 6) == 0.7
    assert round(cpu.ratio.high, 6) == 0.9
    assert cpu.unit == "µs"

    p99 = rows[f"p99 at 500 req/s, non-routed; {who}"]
    assert p99.ours is not None
    assert p99.ours.median == 3.1
    assert p99.reference == summarize([3.5, 4.0])
    assert p99.ratio is None
    assert p99.unit == "ms"
    assert f"p50 at 500 req/s, routed; {who}" in rows


def test_the_rows_against_nginx_are_the_same_with_a_baseline_beside_them() -> None:
    sat, paced = _measured()
    without = {name: sat[name] for name in ("direct", "proxy_unrouted", "proxy_routed", "nginx")}
    big = {"proxy": [{"bytes_per_s": 2.0**30, "proxy_rss_growth_mb": 0.5}] * 2,
           "nginx": [{"bytes_per_s": 2.0**29, "proxy_rss_growth_mb": 0.5}] * 2}  # fmt: skip
    assert _rows(sat, paced, big) == _rows(without, without, big)


def test_the_note_names_the_commit_what_it_imported_and_the_options_left_out() -> None:
    note = baseline_note(BASELINE, ["--reload-settle-s"], "HEAD a074350")
    assert "528c3f22d4426440fce4f33be722fe5eba50c94d" in note
    assert "proxy from /repo/var/b/proxy/__init__.py" in note
    assert "left out: --reload-settle-s" in note
    assert "ours = this tree, HEAD a074350" in note
    assert "left out" not in baseline_note(BASELINE, [], "HEAD a074350")


def test_the_burst_note_puts_half_a_burst_of_cpu_beside_the_added_p50_of_each() -> None:
    _, paced = _measured()
    note = burst_note(paced, rate=500)
    assert "arrive together every 20 ms" in note
    # ours (routed): 5 × 355 µs (median of 350 and 360) ≈ 1.78 ms; measured p50 1.6 over direct's 0.5 = 1.1
    assert "ours (routed) 5 × 355 µs ≈ 1.77 ms (added p50 measured: 1.10 ms)" in note
    assert "nginx 5 × 50 µs ≈ 0.25 ms (added p50 measured: 0.30 ms)" in note
    assert "about 80 µs of CPU per request" in note
