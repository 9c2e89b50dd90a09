"""A small client of Prometheus's HTTP API: one instant query at a given time, and what went wrong.

Owns: Prometheus (GET /api/v1/query with `time=`, on one ClientSession opened and closed by its owner),
Series (one sample: labels and a value) and PrometheusError, whose message says what failed: Prometheus
unreachable (`unreachable` is then true: the loop says so once per outage), a bad HTTP status, a payload
that is not `success`, a result that is neither a vector nor a scalar. Does not own which queries are
asked nor what they mean (figures.py), nor what an error does to an analysis (the loop: inconclusive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["Prometheus", "PrometheusError", "Series"]

TIMEOUT_S = 10.0


class PrometheusError(Exception):
    """A query that gave no answer to use; the message says why. `unreachable`: no answer at all."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    value: float


class Prometheus:
    """Instant queries against one Prometheus server (`url`: its base, e.g. http://prometheus:9090)."""

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def query(self, expr: str, *, at: float) -> list[Series]:
        """The value of `expr` at the Unix time `at`: one Series per element of a vector, one for a scalar."""
        if self._session is None:
            raise RuntimeError("Prometheus.open() first")
        params = {"query": expr, "time": f"{at:.3f}"}
        try:
            async with self._session.get(f"{self.url}/api/v1/query", params=params) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            message = f"cannot reach Prometheus at {self.url}: {reason}"
            raise PrometheusError(message, unreachable=True) from None
        return parse_answer(expr, status, body)


def parse_answer(expr: str, status: int, body: bytes) -> list[Series]:
    """The samples of one /api/v1/query answer, or a PrometheusError saying what is wrong with it."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise PrometheusError(f"HTTP {status} to {expr!r} with a body that is not Prometheus's JSON")
    if payload.get("status") != "success" or status != 200:
        kind, error = payload.get("errorType", "unknown"), payload.get("error", "no error message")
        raise PrometheusError(f"HTTP {status} to {expr!r}: {kind}: {error}")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PrometheusError(f"the answer to {expr!r} has no data")
    kind = data.get("resultType")
    try:
        if kind == "vector":
            # float() reads the NaN, +Inf and -Inf Prometheus writes as such
            return [Series(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]
        if kind == "scalar":
            return [Series({}, float(data["result"][1]))]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"a malformed {kind} for {expr!r}: {exc!r}") from None
    raise PrometheusError(f"{expr!r} gave a {kind} result: a vector or a scalar was expected")

