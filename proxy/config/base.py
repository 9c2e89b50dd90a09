"""What every part of the routes.yaml schema shares: the error type, the strict frozen base model,
and the single-value checks used by more than one block (methods, percentages, path regexes).

schema.py, routes.py, shadow.py and resilience.py build on this; it imports none of them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = [
    "TOKEN", "Method", "Percent", "StrictModel", "bounded", "check_path_regex", "check_percent", "fail",
]  # fmt: skip

# RFC 9110 token: what a method or header name may be made of.
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def fail(reason: str) -> PydanticCustomError:
    """A validation error whose message is `reason` as written (yamlsource adds file, line and path)."""
    return PydanticCustomError("config", "{reason}", {"reason": reason})


class StrictModel(BaseModel):
    """Frozen, unknown fields refused, no type coercion (YAML's 0755 never silently becomes 493)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _method(value: str) -> str:
    if not TOKEN.fullmatch(value):
        raise fail(f"{value!r} is not an HTTP method")
    return value.upper()


Method = Annotated[str, AfterValidator(_method)]


def bounded(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise fail(f"must be between {low} and {high}")
    return value


def check_percent(value: float) -> float:
    if not 0 <= value <= 100:
        raise fail("must be between 0 and 100")
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise fail("must have at most two decimals")
    return value


Percent = Annotated[float, AfterValidator(check_percent)]


def check_path_regex(value: str) -> str:
    if not value.startswith("^"):
        raise fail("must start with '^': it is searched (re.search) in the normalized path")
    try:
        re.compile(value)
    except re.error as exc:
        raise fail(f"is not a valid regular expression: {exc}") from exc
    return value
