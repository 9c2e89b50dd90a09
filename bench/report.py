"""The report: a Markdown table (scenario, our figure, the reference, the ratio, the target) and JSON.

Pure: results in, text and dicts out; bench.__main__ writes the files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from bench.baseline import Baseline
from bench.model import Row, ScenarioResult
from bench.stats import Summary


def cell(summary: Summary | None, unit: str = "") -> str:
    if summary is None:
        return "—"
    text = summary.render(_fmt(summary))
    return f"{text} {unit}".strip()


def _fmt(summary: Summary) -> str:
    biggest = max(abs(summary.median), abs(summary.low), abs(summary.high))
    if biggest >= 100:
        return "{:.0f}"
    if biggest >= 10:
        return "{:.1f}"
    return "{:.2f}"


def verdict(row: Row) -> str:
    if row.met is None:
        return "—"
    return "met" if row.met else "**NOT met**"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| scenario | measure | ours | reference | ratio | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = cell(row.ratio, "×") if row.ratio is not None else "—"
        lines.append(
            f"| {row.scenario} | {row.measure} | {cell(row.ours, row.unit)} | "
            f"{cell(row.reference, row.unit)} | {ratio} | {row.target or '—'} | {verdict(row)} |"
        )
    return "\n".join(lines)


def render_markdown(
    results: Sequence[ScenarioResult],
    *,
    machine: dict[str, str],
    date: str,
    settings: dict[str, Any],
    charts: Sequence[str] = (),
    failures: dict[str, str] | None = None,
    baseline: Baseline | None = None,
) -> str:
    rows = [row for result in results for row in result.rows]
    missed = [row for row in rows if row.met is False]
    out = [
        f"# Benchmark report — {date}",
        "",
        "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()) + ".",
        "",
        f"Settings: {settings.get('rounds')} interleaved rounds per scenario; figures are medians with "
        "(min–max) over rounds; ratios are computed per round, candidates side by side, then summarized.",
        "",
        *_baseline_lines(baseline),
        table(rows),
        "",
    ]
    if missed:
        out += ["## Targets not met", ""]
        out += [f"- {row.scenario}: {row.measure} — {cell(row.ours, row.unit)}"
                f"{' (ratio ' + cell(row.ratio, '×') + ')' if row.ratio else ''}, target {row.target}."
                for row in missed]  # fmt: skip
        out.append("")
    for result in results:
        if result.notes:
            out += [f"## {result.title}", ""]
            out += [f"- {note}" for note in result.notes]
            out.append("")
    if failures:
        out += ["## Scenarios that failed to run", ""]
        out += [f"- {name}: {error}" for name, error in failures.items()]
        out.append("")
    if charts:
        out += ["## Charts", ""]
        out += [f"![{name}]({name})" for name in charts]
        out.append("")
    return "\n".join(out)


def _baseline_lines(baseline: Baseline | None) -> list[str]:
    if baseline is None:
        return []
    return [
        f"Baseline: our proxy as it was at `{baseline.ref}` (commit `{baseline.sha}`), run in the same "
        f'rounds as today\'s in scenario 1; in the rows marked "reference = baseline {baseline.short}" the '
        "ratio is now / baseline.",
        "",
    ]


def to_json(
    results: Sequence[ScenarioResult], *, machine: dict[str, str], date: str, settings: dict[str, Any],
    failures: dict[str, str] | None = None, baseline: Baseline | None = None,
) -> dict[str, Any]:  # fmt: skip
    extra = {} if baseline is None else {"baseline": baseline.describe()}
    return {
        "date": date,
        "machine": machine,
        "settings": settings,
        "scenarios": {
            r.name: {
                "title": r.title,
                "rows": [dataclasses.asdict(row) for row in r.rows],
                "raw": r.raw,
                "notes": r.notes,
            }
            for r in results
        },
        "failures": failures or {},
        **extra,
    }
