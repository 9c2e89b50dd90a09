"""A fake Prometheus on loopback: /api/v1/query answers canned results keyed by query (and time).

A query nobody set up answers an empty vector, as Prometheus does for a series that does not exist.
`fleet()` sets up what figures.interval_figures asks for one route: per side, each counter at the start
and at the end of the interval, per replica.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from proxy.controller.figures import ROLES, buckets_query, errors_query, guard_query, requests_query

Labels = Mapping[str, str]


@dataclass
class FakePrometheus:
    vectors: dict[tuple[str, float | None], list[tuple[Labels, float]]] = field(default_factory=dict)
    raw: dict[str, tuple[int, Any]] = field(default_factory=dict)  # query -> (status, JSON body)
    asked: list[tuple[str, float]] = field(default_factory=list)
    down: bool = False  # answer 503 with no JSON, like a proxy in front of a Prometheus that is gone

    def vector(self, query: str, series: Sequence[tuple[Labels, float]], *, at: float | None = None) -> None:
        self.vectors[(query, at)] = list(series)

    def answer(self, query: str, status: int, body: Any) -> None:
        self.raw[query] = (status, body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/query", self._query)
        return app

    async def _query(self, request: web.Request) -> web.StreamResponse:
        query, at = request.query["query"], round(float(request.query["time"]), 3)
        self.asked.append((query, at))
        if self.down:
            return web.Response(status=503, text="upstream connect error")
        if query in self.raw:
            status, body = self.raw[query]
            return web.json_response(body, status=status)
        series = self.vectors.get((query, at), self.vectors.get((query, None), []))
        result = [{"metric": dict(labels), "value": [at, _text(value)]} for labels, value in series]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


def _text(value: float) -> str:
    return "+Inf" if value == math.inf else "NaN" if math.isnan(value) else repr(float(value))


@dataclass(frozen=True)
class Side:
    """One side's increase over the interval on one replica: requests, 5xx, and per-bucket counts."""

    requests: float
    errors: float = 0.0
    buckets: Sequence[tuple[str, float]] = ()  # (le, cumulative increase), "+Inf" last


def replica(name: str) -> dict[str, str]:
    return {"job": "proxy", "instance": name}


def fleet(
    fake: FakePrometheus, route: str, *, start: float, end: float, sides: Mapping[str, Sequence[Side]],
    base: float = 1000.0,
) -> None:  # fmt: skip
    """Each replica i of each role: every counter at `base` at the start and `base` + its increase at the
    end (so the figures are exactly the increases, summed over replicas)."""
    for role in ROLES:
        replicas = sides.get(role, ())
        queries = {
            requests_query(route, role): [(replica(f"r{i}"), s.requests) for i, s in enumerate(replicas)],
            errors_query(route, role): [(replica(f"r{i}"), s.errors) for i, s in enumerate(replicas)],
            buckets_query(route, role): [
                ({**replica(f"r{i}"), "le": le}, count)
                for i, s in enumerate(replicas)
                for le, count in s.buckets
            ],
        }
        for query, grown in queries.items():
            fake.vector(query, [(labels, base) for labels, _ in grown], at=start)
            fake.vector(query, [(labels, base + value) for labels, value in grown], at=end)
    fake.vector(guard_query(route), [({}, 0.0)])
