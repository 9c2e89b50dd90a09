"""PNG charts of the report (matplotlib, Agg backend): latency at 500 req/s, shadow cost, before/after.

Each function takes the chart data a scenario left in ScenarioResult.charts and writes one PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_bars(data: dict[str, dict[str, float]], path: Path, *, title: str) -> Path:
    """Grouped bars: for each candidate, its latency percentiles in ms."""
    plt = _pyplot()
    candidates = list(data)
    quantiles = list(next(iter(data.values())))
    width = 0.8 / len(candidates)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, name in enumerate(candidates):
        xs = [q + (i - (len(candidates) - 1) / 2) * width for q in range(len(quantiles))]
        ax.bar(xs, [data[name][q] for q in quantiles], width, label=name)
    ax.set_xticks(range(len(quantiles)), [f"p{q[:2]}.{q[2:]}" if len(q) > 2 else f"p{q}" for q in quantiles])
    ax.set_ylabel("latency (ms, median of rounds)")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def before_after(data: dict[str, dict[str, float]], path: Path, *, title: str) -> Path:
    """Two panels: images/s and p95 latency, rollout 0 % (legacy) vs 100 % (image service)."""
    plt = _pyplot()
    arms = list(data)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    colors = ["#c0504d", "#4f81bd"]
    left.bar(arms, [data[a]["images_per_s"] for a in arms], color=colors)
    left.set_title("images per second (higher is better)")
    right.bar(arms, [data[a]["p95_s"] for a in arms], color=colors)
    right.set_title("p95 latency, s (lower is better; before: a lower bound)")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
