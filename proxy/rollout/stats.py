"""The statistics a canary judgement needs, from counts Prometheus can give. Standard library only.

Owns: Histogram (a Prometheus-style cumulative histogram), histogram_quantile() (as PromQL computes
it), the one-sided two-proportion z-test (is the candidate's error share higher?), the one-sided
Mann-Whitney U test on two binned samples (is the candidate slower?, as Kayenta's judge asks) and the
exact binomial tail (is a mismatch rate above a bound?). Does not own what a check is, its threshold
or the verdict (analysis.py), nor fetching anything.

Every p-value is one-sided, H1 being "the candidate is worse", and is 1.0 when the data cannot show
a difference at all (an empty side, no variation): no evidence never reads as a regression.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Histogram", "MannWhitney", "binomial_tail", "histogram_quantile", "mann_whitney", "two_proportions",
]  # fmt: skip

_SQRT2 = math.sqrt(2.0)


def _upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z (erfc keeps its precision far into the tail)."""
    return 0.5 * math.erfc(z / _SQRT2)


@dataclass(frozen=True, slots=True)
class Histogram:
    """`le` upper bounds, increasing, the last +Inf; `cumulative[i]` observations were <= bounds[i].

    Counts are floats (Prometheus's are), typically the increase of each bucket's counter over one
    interval. A count below the one before it (a counter reset seen half-way) is raised to it, the
    envelope PromQL's histogram_quantile takes too.
    """

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.bounds) != len(self.cumulative):
            raise ValueError("a histogram needs one cumulative count per bucket bound")
        if not self.bounds or self.bounds[-1] != math.inf:
            raise ValueError("a histogram's last bucket must be +Inf")
        if not all(low < high for low, high in zip(self.bounds, self.bounds[1:], strict=False)):  # NaN too
            raise ValueError("bucket bounds must increase")
        if any(not (math.isfinite(c) and c >= 0) for c in self.cumulative):
            raise ValueError("bucket counts must be finite and not negative")
        envelope, top = [], 0.0
        for count in self.cumulative:
            top = max(top, count)
            envelope.append(top)
        object.__setattr__(self, "cumulative", tuple(envelope))

    @classmethod
    def of(cls, buckets: Iterable[tuple[float, float]]) -> Histogram:
        """From (le, cumulative count) pairs in any order, as a Prometheus query returns them. Pairs with
        the same bound (`le="0.2"` and `le="2e-1"` are two series) are added up, as PromQL does."""
        merged: dict[float, float] = {}
        for le, count in buckets:
            merged[le] = merged.get(le, 0.0) + count
        ordered = sorted(merged.items())
        return cls(tuple(le for le, _ in ordered), tuple(count for _, count in ordered))

    @property
    def total(self) -> float:
        return self.cumulative[-1]

    def counts(self) -> tuple[float, ...]:
        """Observations per bucket (not cumulative)."""
        return tuple(c - p for p, c in zip((0.0, *self.cumulative), self.cumulative, strict=False))


def histogram_quantile(q: float, histogram: Histogram) -> float:
    """The q-quantile the way PromQL's histogram_quantile estimates it (promql/quantile.go).

    Linear interpolation inside the bucket holding the rank, from 0 for the first bucket when its
    bound is above 0; a rank in the +Inf bucket gives the highest finite bound; NaN for an empty
    histogram or one with only the +Inf bucket.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bounds, cumulative = histogram.bounds, histogram.cumulative
    if len(bounds) < 2 or histogram.total == 0:
        return math.nan
    rank = q * histogram.total
    b = bisect_left(cumulative, rank, hi=len(cumulative) - 1)  # first bucket holding the rank
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, cumulative[b]
    if b > 0:
        start, count, rank = bounds[b - 1], count - cumulative[b - 1], rank - cumulative[b - 1]
    if count == 0:  # q = 0 with an empty first bucket: Go's 0/0, NaN
        return math.nan
    return start + (bounds[b] - start) * (rank / count)


def two_proportions(errors_a: float, total_a: float, errors_b: float, total_b: float) -> float:
    """One-sided p-value of a pooled two-proportion z-test, H1: a's error share is above b's.

    1.0 when a side saw nothing or when there is no variation (no errors at all, or only errors).
    """
    for errors, total in ((errors_a, total_a), (errors_b, total_b)):
        if not (0 <= errors <= total and math.isfinite(total)):
            raise ValueError("counts must be finite, errors between 0 and the total")
    if total_a == 0 or total_b == 0:
        return 1.0
    pooled = (errors_a + errors_b) / (total_a + total_b)
    variance = pooled * (1 - pooled) * (1 / total_a + 1 / total_b)
    if variance <= 0:
        return 1.0
    z = (errors_a / total_a - errors_b / total_b) / math.sqrt(variance)
    return _upper_tail(z)


@dataclass(frozen=True, slots=True)
class MannWhitney:
    u: float  # the candidate's U: pairs (candidate, primary) where the candidate is slower, ties half
    z: float  # tie-corrected, continuity-corrected normal score of u
    p_value: float  # one-sided, H1: the candidate is slower


def mann_whitney(candidate: Histogram, primary: Histogram) -> MannWhitney:
    """One-sided Mann-Whitney U on two binned samples with the same bucket bounds.

    Every observation in one bucket ties with every other in it (midranks); the normal approximation
    carries the tie correction and a continuity correction of 0.5, as scipy's mannwhitneyu(candidate,
    primary, alternative="greater", method="asymptotic") does on the expanded samples.
    """
    if candidate.bounds != primary.bounds:
        raise ValueError("both histograms must have the same bucket bounds")
    cand, prim = candidate.counts(), primary.counts()
    n_c, n_p = candidate.total, primary.total
    u, below = 0.0, 0.0  # below: primary observations in the buckets before this one
    for c, p in zip(cand, prim, strict=True):
        u += c * (below + p / 2)
        below += p
    n = n_c + n_p
    if n_c == 0 or n_p == 0 or n < 2:
        return MannWhitney(u=u, z=0.0, p_value=1.0)
    ties = sum(t**3 - t for t in (c + p for c, p in zip(cand, prim, strict=True)))
    variance = n_c * n_p / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:  # every observation in one bucket: nothing to rank
        return MannWhitney(u=u, z=0.0, p_value=1.0)
    z = (u - n_c * n_p / 2 - 0.5) / math.sqrt(variance)
    return MannWhitney(u=u, z=z, p_value=_upper_tail(z))


def binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p): how surprising this many mismatches would be
    if the true rate were exactly p (the exact one-sided test of H1: rate > p)."""
    if not (0 <= successes <= trials and 0 <= p <= 1):
        raise ValueError("need 0 <= successes <= trials and 0 <= p <= 1")
    if successes == 0 or p == 1:
        return 1.0
    if p == 0:
        return 0.0
    if successes > (trials + 1) * p:  # above the mode: the terms fall from the first one on
        return min(1.0, _sum_from(successes, trials, p, up=True))
    return max(0.0, 1.0 - _sum_from(successes - 1, trials, p, up=False))


def _sum_from(k: int, n: int, p: float, *, up: bool) -> float:
    """P(X = k) + P(X = k+1) + ... (up) or P(X = k) + ... + P(X = 0), each term from the one before,
    stopping once the rest cannot change the sum (they only fall away from the mode)."""
    q = 1 - p
    log_first = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    log_first += k * math.log(p) + (n - k) * math.log1p(-p)
    term, total = 1.0, 1.0  # relative to the first term
    for j in range(k, n) if up else range(k, 0, -1):
        term *= (n - j) / (j + 1) * p / q if up else j / (n - j + 1) * q / p
        total += term
        if term < 1e-17 * total:
            break
    return math.exp(log_first) * total
