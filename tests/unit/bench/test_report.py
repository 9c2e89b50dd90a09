from __future__ import annotations

import json
from pathlib import Path

from bench.baseline import Baseline
from bench.model import Row, ScenarioResult
from bench.report import cell, render_markdown, table, to_json
from bench.stats import summarize

MACHINE = {"cpu": "Test CPU", "cores": "2"}


def _result() -> ScenarioResult:
    result = ScenarioResult("passthrough", "Pass-through")
    result.rows = [
        Row("1 pass-through", "saturation", summarize([6000, 6100, 5900]), summarize([20000, 20000, 19000]),
            summarize([0.30, 0.31, 0.29]), "ratio ≥ 0.6", False, "req/s"),
        Row("1 pass-through", "10 MB throughput", summarize([1400.0]), summarize([800.0]), summarize([1.7]),
            "ratio ≥ 1", True, "MB/s"),
        Row("6 routing decision", "share", summarize([10.6]), None, None, "report", None, "%"),
    ]  # fmt: skip
    result.notes = ["where the time goes: aiohttp 50 %"]
    return result


def test_a_cell_shows_median_range_and_unit_with_precision_by_magnitude() -> None:
    assert cell(summarize([6000.0, 6100.0, 5900.0]), "req/s") == "6000 (5900–6100) req/s"
    assert cell(summarize([0.30, 0.31, 0.29]), "×") == "0.30 (0.29–0.31) ×"
    assert cell(summarize([12.34]), "ms") == "12.3 ms"
    assert cell(None) == "—"


def test_the_table_has_a_row_per_measure_and_says_plainly_when_a_target_is_missed() -> None:
    text = table(_result().rows)
    lines = text.splitlines()
    assert lines[0].startswith("| scenario | measure | ours | reference | ratio | target | verdict |")
    assert len(lines) == 2 + 3
    assert lines[2].endswith("| ratio ≥ 0.6 | **NOT met** |")
    assert lines[3].endswith("| ratio ≥ 1 | met |")
    assert lines[4].endswith("| report | — |")


def test_the_report_names_the_machine_lists_missed_targets_notes_failures_and_charts() -> None:
    text = render_markdown(
        [_result()], machine=MACHINE, date="2026-11-29", settings={"rounds": 3},
        charts=["2026-11-29-latency.png"], failures={"soak": "RuntimeError: boom"},
    )  # fmt: skip
    assert text.startswith("# Benchmark report — 2026-11-29")
    assert "cpu Test CPU, cores 2" in text
    assert "## Targets not met" in text
    missed = (
        "- 1 pass-through: saturation — 6000 (5900–6100) req/s (ratio 0.30 (0.29–0.31) ×), "
        "target ratio ≥ 0.6."
    )
    assert missed in text
    assert "where the time goes: aiohttp 50 %" in text
    assert "- soak: RuntimeError: boom" in text
    assert "![2026-11-29-latency.png](2026-11-29-latency.png)" in text


def test_a_report_with_every_target_met_has_no_missed_section() -> None:
    result = _result()
    result.rows = [row for row in result.rows if row.met is not False]
    text = render_markdown([result], machine=MACHINE, date="d", settings={})
    assert "Targets not met" not in text


def test_the_json_keeps_every_figure_and_is_serializable() -> None:
    data = to_json([_result()], machine=MACHINE, date="2026-11-29", settings={"rounds": 3})
    row = data["scenarios"]["passthrough"]["rows"][0]
    assert row["ours"] == {"median": 6000, "low": 5900, "high": 6100, "rounds": 3}
    assert row["met"] is False
    assert json.loads(json.dumps(data))["machine"] == MACHINE


BASELINE = Baseline("main~3", "528c3f22d4426440fce4f33be722fe5eba50c94d", "528c3f2", Path("/repo/var/b"))


def test_a_report_with_a_baseline_names_its_ref_and_commit_before_the_table() -> None:
    text = render_markdown([_result()], machine=MACHINE, date="d", settings={"rounds": 3}, baseline=BASELINE)
    line = next(line for line in text.splitlines() if line.startswith("Baseline:"))
    assert "`main~3`" in line
    assert "`528c3f22d4426440fce4f33be722fe5eba50c94d`" in line
    assert "now / baseline" in line
    assert text.index("Baseline:") < text.index("| scenario |")


def test_without_a_baseline_the_report_and_the_json_are_as_before() -> None:
    text = render_markdown([_result()], machine=MACHINE, date="d", settings={"rounds": 3})
    assert "Baseline" not in text
    assert text == render_markdown(
        [_result()], machine=MACHINE, date="d", settings={"rounds": 3}, baseline=None
    )
    data = to_json([_result()], machine=MACHINE, date="d", settings={})
    assert set(data) == {"date", "machine", "settings", "scenarios", "failures"}


def test_the_json_of_a_run_with_a_baseline_keeps_its_ref_and_sha() -> None:
    data = to_json([_result()], machine=MACHINE, date="d", settings={}, baseline=BASELINE)
    assert json.loads(json.dumps(data))["baseline"] == {
        "ref": "main~3",
        "sha": "528c3f22d4426440fce4f33be722fe5eba50c94d",
    }
