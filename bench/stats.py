"""Pure statistics of the bench: medians with min–max over rounds, paired ratios and differences.

Every figure in the report is a Summary of per-round values; a ratio is computed per round (the two
candidates measured side by side in that round) and then summarized, never as a ratio of medians.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True, slots=True)
class Summary:
    median: float
    low: float
    high: float
    rounds: int

    def render(self, fmt: str = "{:.3g}") -> str:
        """'1.23 (1.1–1.4)'; a single round shows its value alone."""
        if self.rounds <= 1 or self.low == self.high:
            return fmt.format(self.median)
        return f"{fmt.format(self.median)} ({fmt.format(self.low)}–{fmt.format(self.high)})"


def summarize(values: Sequence[float]) -> Summary:
    """Median with min and max; NaN entries (a failed round) are left out, an empty input raises."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        raise ValueError("no values to summarize")
    return Summary(statistics.median(clean), min(clean), max(clean), len(clean))


def paired_ratios(ours: Sequence[float], reference: Sequence[float]) -> list[float]:
    """ours[i] / reference[i] for each round; a zero reference gives NaN (left out of summaries)."""
    if len(ours) != len(reference):
        raise ValueError("paired values need the same number of rounds")
    return [a / b if b else math.nan for a, b in zip(ours, reference, strict=True)]


def paired_differences(ours: Sequence[float], reference: Sequence[float]) -> list[float]:
    if len(ours) != len(reference):
        raise ValueError("paired values need the same number of rounds")
    return [a - b for a, b in zip(ours, reference, strict=True)]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def growth_percent(before: float, after: float) -> float:
    return (after - before) / before * 100 if before else math.nan


T = TypeVar("T")


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """The candidates of one round in a rotated order (round 0: as given, round 1: from the second...):
    no candidate always runs first or right after the same neighbour, so what a position costs (a
    neighbour's leftover work, a warming core) spreads over all of them instead of biasing one."""
    k = round_index % len(items) if items else 0
    return [*items[k:], *items[:k]]
