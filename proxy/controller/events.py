"""What the controller says about a rollout: states, verdicts and figures as plain JSON values.

Owns: the dicts of a state, a verdict (with its checks, figures and p-values) and one side's figures, as
the INFO log lines, GET /status and the CLI show them, and `finite` (JSON has no NaN nor infinity: they
become null). Does not own any decision (proxy/rollout) nor where the lines go (the caller's logger).
"""

from __future__ import annotations

import math
from typing import Any

from proxy.rollout.analysis import CheckResult, Figures, Verdict
from proxy.rollout.state import RolloutState
from proxy.rollout.stats import histogram_quantile

__all__ = ["check_dict", "figures_dict", "finite", "state_dict", "verdict_dict"]


def finite(value: float | None) -> float | None:
    """`value`, or None when it is NaN or infinite (JSON cannot carry those)."""
    return value if value is not None and math.isfinite(value) else None


def state_dict(state: RolloutState) -> dict[str, Any]:
    return {
        "phase": state.phase,
        "paused_by": state.paused_by,
        "step": state.step_index,
        "steps": list(state.steps),
        "percent": state.percent,
        "failures_in_row": state.failures_in_row,
        "inconclusive_in_row": state.inconclusive_in_row,
        "reason": state.reason,
        "updated_at": state.updated_at,
    }


def check_dict(check: CheckResult) -> dict[str, Any]:
    return {
        "name": check.name,
        "result": check.result,
        "p_value": finite(check.p_value),
        "threshold": check.threshold,
        "observed": {name: finite(value) for name, value in check.observed.items()},
        "reason": check.reason,
    }


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        "result": verdict.result,
        "reason": verdict.reason,
        "checks": [check_dict(check) for check in verdict.checks],
    }


def figures_dict(figures: Figures) -> dict[str, Any]:
    """One side's figures over the interval; p95 as PromQL would estimate it from the same buckets."""
    found: dict[str, Any] = {"requests": figures.requests, "errors": figures.errors}
    if figures.latency is not None:
        found["p95_s"] = finite(histogram_quantile(0.95, figures.latency))
    if figures.shadow_compared is not None:
        found["shadow_compared"] = figures.shadow_compared
        found["shadow_mismatched"] = figures.shadow_mismatched
    if figures.custom:
        found["custom"] = {name: finite(value) for name, value in figures.custom.items()}
    if figures.guard_tripped:
        found["guard_tripped"] = True
    return found
