"""The `progressive` block of a route in routes.yaml: pydantic models, frozen, extra="forbid", strict.

Owns: the single-field and in-block rules of `progressive` and of its `checks` (the shape of `steps`,
the bounds of every number, at least one check, unique custom names). Rules that span the route (a
candidate and a rollout to move, a shadow block for `shadow_mismatch_rate`) are in checks.py; schema.py
puts `Progressive` on a route. What the numbers mean when a rollout runs is proxy/rollout's business.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, field_validator, model_validator

from proxy.config.base import StrictModel, bounded, check_percent, fail
from proxy.config.checks import NAME, NAME_RULE

__all__ = [
    "BUILTIN_CHECKS", "PAUSE", "CustomCheck", "ErrorRateCheck", "LatencyCheck", "Progressive",
    "ProgressiveChecks", "ShadowMismatchCheck", "Step",
]  # fmt: skip

PAUSE: Literal["pause"] = "pause"
BUILTIN_CHECKS = ("error_rate", "latency_p95", "shadow_mismatch_rate")


def _step(value: Any) -> float | Literal["pause"]:
    if value == PAUSE:
        return PAUSE
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"must be a percent (0 < percent <= 100) or the word pause (got {value!r})")
    if not 0 < value <= 100:
        raise fail("must be greater than 0 and at most 100 (0 % is where a rollout starts, not a step)")
    return check_percent(float(value))


Step = Annotated[float | Literal["pause"], PlainValidator(_step)]


def _fraction(value: float, what: str) -> float:
    if not (math.isfinite(value) and 0 <= value < 1):
        raise fail(f"must be a fraction from 0 up to (not including) 1, e.g. {what}")
    return value


class ErrorRateCheck(StrictModel):
    """Candidate 5xx share minus the primary's, over the same interval."""

    max_increase: float

    @field_validator("max_increase")
    @classmethod
    def _increase(cls, value: float) -> float:
        return _fraction(value, "0.01 for one percentage point")


class LatencyCheck(StrictModel):
    """Candidate p95 divided by the primary's, over the same interval."""

    max_ratio: float

    @field_validator("max_ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        if not (math.isfinite(value) and 1 <= value <= 100):
            raise fail("must be a ratio from 1 to 100, e.g. 1.25: the candidate's p95 may be 25 % above")
        return value


class ShadowMismatchCheck(StrictModel):
    """Mismatches / comparisons of the route's shadow copies over the interval."""

    max: float

    @field_validator("max")
    @classmethod
    def _max(cls, value: float) -> float:
        return _fraction(value, "0.02 for 2 % of the comparisons")


class CustomCheck(StrictModel):
    """A PromQL query returning one number; the check fails when it is above `max`."""

    name: str
    query: str
    max: float

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise fail(f"check name {value!r} {NAME_RULE}")
        if value in BUILTIN_CHECKS:
            raise fail(f"{value!r} is a built-in check: give the custom one another name")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if not value.strip():
            raise fail("must not be empty: a PromQL expression returning one number")
        return value

    @field_validator("max")
    @classmethod
    def _max(cls, value: float) -> float:
        if not math.isfinite(value):
            raise fail("must be a finite number")
        return value


class ProgressiveChecks(StrictModel):
    error_rate: ErrorRateCheck | None = None
    latency_p95: LatencyCheck | None = None
    shadow_mismatch_rate: ShadowMismatchCheck | None = None  # checks.py: only with a shadow block
    custom: list[CustomCheck] = Field(default_factory=list)  # names unique: checks.py, with their lines

    @model_validator(mode="after")
    def _at_least_one(self) -> ProgressiveChecks:
        if not (self.error_rate or self.latency_p95 or self.shadow_mismatch_rate or self.custom):
            raise fail("must name at least one check: error_rate, latency_p95, shadow_mismatch_rate, custom")
        return self


class Progressive(StrictModel):
    """Steps of `rollout.percent` and the evidence that moves the route from one to the next."""

    steps: list[Step]
    # At least 5 s: the proxy applies an edit after its 2 s settle time (plus 0.5 s between looks) and
    # Prometheus scrapes every 5-15 s, so a shorter interval would judge traffic of the previous step.
    interval_s: float = 60.0
    min_requests: int = 50  # per side per interval; fewer make the analysis inconclusive
    max_failures: int = 2  # failed analyses in a row that abort the rollout (percent 0)
    max_inconclusive: int = 10  # inconclusive analyses in a row that pause it
    significance: float = 0.05  # a difference counts only when its one-sided p-value is below this
    checks: ProgressiveChecks

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[float | Literal["pause"]]) -> list[float | Literal["pause"]]:
        if not value:
            raise fail("must list at least one percent, e.g. [1, 5, 25, 50, 100]")
        if value[0] == PAUSE:
            raise fail("must not start with pause: the rollout starts when the block is added")
        if value[-1] == PAUSE:
            raise fail("must not end with pause: the last percent already ends the rollout (succeeded)")
        previous: float | None = None
        for index, step in enumerate(value):
            if not isinstance(step, float):  # pause (never first: checked above)
                if value[index - 1] == PAUSE:
                    raise fail(f"has two pauses in a row ([{index - 1}] and [{index}]): one waits as long")
                continue
            if previous is not None and step <= previous:
                raise fail(f"must increase: [{index}] is {step:g}, not above the {previous:g} before it")
            previous = step
        return value

    @field_validator("interval_s")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not (math.isfinite(value) and 5 <= value <= 86_400):
            raise fail("must be from 5 to 86400 seconds: shorter would judge traffic of the previous step "
                       "(the proxy settles an edit for 2 s, Prometheus scrapes every 5-15 s)")
        return value

    @field_validator("min_requests")
    @classmethod
    def _min(cls, value: int) -> int:
        return bounded(value, 1, 1_000_000_000)

    @field_validator("max_failures", "max_inconclusive")
    @classmethod
    def _limits(cls, value: int) -> int:
        return bounded(value, 1, 1000)

    @field_validator("significance")
    @classmethod
    def _significance(cls, value: float) -> float:
        if not (math.isfinite(value) and 0 < value <= 0.5):
            raise fail("must be above 0 and at most 0.5, e.g. 0.05: a one-sided p-value below it counts")
        return value

    @property
    def percents(self) -> tuple[float, ...]:
        """The numeric steps, in order (pauses left out)."""
        return tuple(step for step in self.steps if isinstance(step, float))
