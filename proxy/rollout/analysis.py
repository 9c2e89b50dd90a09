"""One analysis of a progressive rollout: two sides' figures over one interval in, a verdict out.

Owns: Figures (what was measured per side per interval), CheckResult, Verdict and judge(), the rules
that turn figures into passed / failed / inconclusive. Does not own the statistics (stats.py), what a
verdict does to the rollout (state.py), nor fetching the figures from Prometheus (the controller).

The rules, in order:
1. a guard tripped on any replica (either Figures says so): failed, no check is run;
2. either side below `min_requests`: inconclusive, no check is run (too little traffic to judge);
3. each check: failed only when the difference is beyond its threshold AND significant (one-sided
   p-value below `significance`); a custom check has no test: above its `max` fails; a check without
   data (no histogram, no comparison, no number) is inconclusive;
4. any failed check: failed; else any inconclusive check: inconclusive (no evidence is not a pass,
   as in Argo Rollouts); else passed.
Route-wide figures (shadow comparisons, custom query values) are read from the candidate's Figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from proxy.config.progressive import Progressive
from proxy.rollout.stats import Histogram, binomial_tail, histogram_quantile, mann_whitney, two_proportions

__all__ = ["CheckResult", "Figures", "Result", "Verdict", "judge"]

Result = Literal["passed", "failed", "inconclusive"]


@dataclass(frozen=True, slots=True)
class Figures:
    """One side (primary or candidate) over one analysis interval; counts are increases over it (take the
    difference of two instant queries: `increase()` extrapolates, and errors may then exceed requests,
    which judge() refuses with a ValueError)."""

    requests: float
    errors: float  # responses with a 5xx status
    latency: Histogram | None = None  # request duration, cumulative buckets
    shadow_compared: int | None = None  # shadow comparisons (match + mismatch); route-wide
    shadow_mismatched: int | None = None
    custom: Mapping[str, float | None] = field(default_factory=dict)  # custom check name -> value
    guard_tripped: bool = False  # the route's guard is tripped on at least one replica

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    result: Result
    observed: Mapping[str, float]  # the figures the check looked at, by name
    threshold: float
    p_value: float | None  # None: the check has no test (custom) or did not get that far
    reason: str  # one line for a human


@dataclass(frozen=True, slots=True)
class Verdict:
    result: Result
    checks: tuple[CheckResult, ...]
    reason: str


def judge(policy: Progressive, primary: Figures, candidate: Figures) -> Verdict:
    """The verdict of one interval (the rules: this module's docstring)."""
    if primary.guard_tripped or candidate.guard_tripped:
        return Verdict("failed", (), "the route's guard tripped: the candidate's error rate crossed it")
    if min(primary.requests, candidate.requests) < policy.min_requests:
        return Verdict("inconclusive", (), f"too little traffic: primary {primary.requests:g}, candidate "
                       f"{candidate.requests:g} requests (min_requests {policy.min_requests} each)")
    checks = policy.checks
    alpha = policy.significance
    results: list[CheckResult] = []
    if checks.error_rate is not None:
        results.append(_error_rate(checks.error_rate.max_increase, alpha, primary, candidate))
    if checks.latency_p95 is not None:
        results.append(_latency(checks.latency_p95.max_ratio, alpha, primary.latency, candidate.latency))
    if checks.shadow_mismatch_rate is not None:
        results.append(_shadow(checks.shadow_mismatch_rate.max, alpha, candidate))
    for custom in checks.custom:
        results.append(_custom(custom.name, custom.max, candidate.custom.get(custom.name)))
    for outcome in ("failed", "inconclusive"):
        picked = [r for r in results if r.result == outcome]
        if picked:
            return Verdict(outcome, tuple(results), "; ".join(f"{r.name}: {r.reason}" for r in picked))
    return Verdict("passed", tuple(results), f"all {len(results)} checks passed")


def _significance(excess: bool, p: float, alpha: float, beyond: str, within: str) -> tuple[Result, str]:
    if not excess:
        return "passed", within
    if p < alpha:
        return "failed", f"{beyond}, significant (p={p:.3g} < {alpha:g})"
    return "passed", f"{beyond}, not significant (p={p:.3g} >= {alpha:g})"


def _error_rate(max_increase: float, alpha: float, primary: Figures, candidate: Figures) -> CheckResult:
    prim, cand = primary.error_rate, candidate.error_rate
    p = two_proportions(candidate.errors, candidate.requests, primary.errors, primary.requests)
    increase = cand - prim
    said = f"candidate 5xx {cand:.2%} vs primary {prim:.2%}"
    result, reason = _significance(
        increase > max_increase, p, alpha,
        beyond=f"{said}: {increase * 100:+.2f} points is above +{max_increase * 100:g}",
        within=f"{said}: {increase * 100:+.2f} points, within +{max_increase * 100:g}",
    )  # fmt: skip
    observed = {"primary_rate": prim, "candidate_rate": cand, "increase": increase}
    return CheckResult("error_rate", result, observed, max_increase, p, reason)


def _latency(
    max_ratio: float, alpha: float, primary: Histogram | None, candidate: Histogram | None
) -> CheckResult:
    def inconclusive(reason: str) -> CheckResult:
        return CheckResult("latency_p95", "inconclusive", {}, max_ratio, None, reason)

    if primary is None or candidate is None or not (primary.total and candidate.total):
        side = "primary" if primary is None or not primary.total else "candidate"
        return inconclusive(f"no request durations for the {side} in the interval")
    if primary.bounds != candidate.bounds:
        return inconclusive("the two sides' histograms have different buckets: they cannot be ranked")
    prim, cand = histogram_quantile(0.95, primary), histogram_quantile(0.95, candidate)
    if math.isnan(prim) or math.isnan(cand):
        return inconclusive("the histograms have only the +Inf bucket: no p95 can be estimated")
    ratio = cand / prim if prim > 0 else (1.0 if cand <= 0 else math.inf)
    test = mann_whitney(candidate, primary)
    said = f"candidate p95 {cand:.3g} s vs primary {prim:.3g} s"
    result, reason = _significance(
        ratio > max_ratio, test.p_value, alpha,
        beyond=f"{said}: x{ratio:.2f} is above x{max_ratio:g}",
        within=f"{said}: x{ratio:.2f}, within x{max_ratio:g}",
    )  # fmt: skip
    observed = {"primary_p95": prim, "candidate_p95": cand, "ratio": ratio, "u": test.u, "z": test.z}
    return CheckResult("latency_p95", result, observed, max_ratio, test.p_value, reason)


def _shadow(maximum: float, alpha: float, figures: Figures) -> CheckResult:
    compared, mismatched = figures.shadow_compared, figures.shadow_mismatched
    if not compared or mismatched is None:
        reason = "no shadow comparisons in the interval (is the shadow block's percent above 0?)"
        return CheckResult("shadow_mismatch_rate", "inconclusive", {}, maximum, None, reason)
    if not 0 <= mismatched <= compared:
        raise ValueError("shadow_mismatched must be between 0 and shadow_compared")
    rate = mismatched / compared
    p = binomial_tail(mismatched, compared, maximum)
    said = f"{mismatched} of {compared} comparisons differ ({rate:.2%})"
    result, reason = _significance(
        rate > maximum, p, alpha,
        beyond=f"{said}, above {maximum:.2%}",
        within=f"{said}, within {maximum:.2%}",
    )  # fmt: skip
    observed = {"compared": float(compared), "mismatched": float(mismatched), "rate": rate}
    return CheckResult("shadow_mismatch_rate", result, observed, maximum, p, reason)


def _custom(name: str, maximum: float, value: float | None) -> CheckResult:
    if value is None or math.isnan(value):
        return CheckResult(name, "inconclusive", {}, maximum, None, "the query returned no number")
    result: Result = "failed" if value > maximum else "passed"
    reason = f"{value:g} is {'above' if result == 'failed' else 'within'} the max {maximum:g}"
    return CheckResult(name, result, {"value": value}, maximum, None, reason)
