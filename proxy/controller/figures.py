"""One analysis interval's Figures of a route, per side, from the fleet's counters in Prometheus.

Owns: the PromQL of each figure, the per-interval difference of two instant queries, and Unusable (an
interval that cannot be counted). Does not own the client (prometheus.py), the verdict (proxy/rollout/
analysis.py) nor what an unusable interval does (the loop: inconclusive).

Each counter is asked per replica — `sum by (job, instance)` of the route's series for one side
(`role="primary"` or `"candidate"`), every upstream, method and code of that replica together — at the
end of the interval and at its start; a figure is the sum over replicas of end minus start, which counts
exactly what was served in between (`increase()` extrapolates to the window's edges: errors could then
exceed requests). A series absent at the start counts from 0 (a replica, a status code or a bucket seen
for the first time); one absent at the end is left out (its replica stopped: what it served in the
interval is lost to both sides alike). A value lower at the end than at the start is a counter reset (a
replica restarted in the interval): that side cannot be counted, Unusable says so and names the replica.

The families and labels are the proxy's (proxy/metrics): strangler_requests_total{route, role, code},
strangler_request_duration_seconds_bucket{route, role, le}, strangler_shadow_comparisons_total{route,
result="match"|"mismatch"} and strangler_guard_tripped{route} (1 while tripped, per replica). Route-wide
figures (shadow comparisons, custom values, a tripped guard) are carried by the candidate's Figures, as
analysis.judge reads them. A custom query is sent as written, at the end of the interval.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Iterable
from typing import Literal

from proxy.config.progressive import Progressive
from proxy.controller.prometheus import Prometheus, PrometheusError, Series
from proxy.rollout.analysis import Figures
from proxy.rollout.stats import Histogram

__all__ = [
    "ROLES", "Role", "Unusable", "buckets_query", "errors_query", "guard_query", "increase",
    "interval_figures", "requests_query", "shadow_query",
]  # fmt: skip

Role = Literal["primary", "candidate"]
ROLES: tuple[Role, Role] = ("primary", "candidate")
PER_REPLICA = "sum by (job, instance)"


class Unusable(Exception):
    """The interval's figures cannot be counted (a counter reset); the message says which and where."""


def _selector(route: str, role: Role | None = None, *, server_errors: bool = False) -> str:
    """Route names are a label's syntax (config checks it); quoted all the same."""
    matchers = [f"route={json.dumps(route)}"]
    if role is not None:
        matchers.append(f"role={json.dumps(role)}")
    if server_errors:
        matchers.append('code=~"5.."')
    return "{" + ", ".join(matchers) + "}"


def requests_query(route: str, role: Role) -> str:
    return f"{PER_REPLICA} (strangler_requests_total{_selector(route, role)})"


def errors_query(route: str, role: Role) -> str:
    return f"{PER_REPLICA} (strangler_requests_total{_selector(route, role, server_errors=True)})"


def buckets_query(route: str, role: Role) -> str:
    return f"sum by (job, instance, le) (strangler_request_duration_seconds_bucket{_selector(route, role)})"


def shadow_query(route: str) -> str:
    return f"sum by (job, instance, result) (strangler_shadow_comparisons_total{_selector(route)})"


def guard_query(route: str) -> str:
    return f"max(strangler_guard_tripped{_selector(route)})"


def increase(before: Iterable[Series], after: Iterable[Series], what: str) -> list[Series]:
    """Per series: its value at the end minus its value at the start (0 when it had none then)."""
    start = {_key(series): series.value for series in before}
    grown = []
    for series in after:
        was = start.get(_key(series), 0.0)
        if not math.isfinite(series.value) or series.value < was:
            raise Unusable(
                f"{what}: a counter went from {was:g} to {series.value:g} on {_where(series)} within the "
                "interval (a replica restarted?): the interval cannot be counted for that side"
            )
        grown.append(Series(series.labels, series.value - was))
    return grown


async def interval_figures(
    prometheus: Prometheus, route: str, policy: Progressive, *, now: float
) -> tuple[Figures, Figures]:
    """(primary, candidate) over the interval ending at the Unix time `now`; only the figures the route's
    checks need are asked. Raises PrometheusError or Unusable."""
    start, checks = now - policy.interval_s, policy.checks

    async def counted(expr: str, what: str) -> list[Series]:
        before, after = await asyncio.gather(prometheus.query(expr, at=start), prometheus.query(expr, at=now))
        return increase(before, after, what)

    asked: dict[str, Awaitable[list[Series]]] = {}
    for role in ROLES:
        asked[f"requests/{role}"] = counted(requests_query(route, role), f"the {role}'s requests")
        if checks.error_rate is not None:
            asked[f"errors/{role}"] = counted(errors_query(route, role), f"the {role}'s 5xx answers")
        if checks.latency_p95 is not None:
            asked[f"latency/{role}"] = counted(buckets_query(route, role), f"the {role}'s durations")
    if checks.shadow_mismatch_rate is not None:
        asked["shadow"] = counted(shadow_query(route), "the shadow comparisons")
    asked["guard"] = prometheus.query(guard_query(route), at=now)
    for check in checks.custom:
        asked[f"custom/{check.name}"] = prometheus.query(check.query, at=now)
    got = dict(zip(asked, await asyncio.gather(*asked.values()), strict=True))
    sides = {
        role: Figures(
            requests=_total(got[f"requests/{role}"]),
            errors=_total(got.get(f"errors/{role}", [])),
            latency=_histogram(got[f"latency/{role}"]) if f"latency/{role}" in got else None,
        )
        for role in ROLES
    }
    compared, mismatched = _comparisons(got["shadow"]) if "shadow" in got else (None, None)
    custom = {check.name: _one_number(check.name, got[f"custom/{check.name}"]) for check in checks.custom}
    tripped = any(series.value >= 1 for series in got["guard"])
    candidate = Figures(
        requests=sides["candidate"].requests, errors=sides["candidate"].errors,
        latency=sides["candidate"].latency, shadow_compared=compared, shadow_mismatched=mismatched,
        custom=custom, guard_tripped=tripped,
    )  # fmt: skip
    return sides["primary"], candidate


def _key(series: Series) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(series.labels.items()))


def _where(series: Series) -> str:
    labels = series.labels
    return labels.get("instance") or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "the fleet"


def _total(series: Iterable[Series]) -> float:
    return sum(item.value for item in series)


def _histogram(series: list[Series]) -> Histogram | None:
    """The fleet's histogram: every replica's bucket of the same bound added up (Histogram.of)."""
    if not series:
        return None
    try:
        return Histogram.of((float(item.labels.get("le", "nan")), item.value) for item in series)
    except ValueError:  # no +Inf bucket, or a bound that is not a number: no p95 to speak of
        return None


def _comparisons(series: Iterable[Series]) -> tuple[int, int]:
    compared = mismatched = 0.0
    for item in series:
        compared += item.value
        if item.labels.get("result") == "mismatch":
            mismatched += item.value
    return round(compared), round(mismatched)


def _one_number(name: str, series: list[Series]) -> float | None:
    if len(series) > 1:
        raise PrometheusError(f"custom check {name!r}: the query gave {len(series)} series, not one number")
    return series[0].value if series else None
