"""Some of a worker's metric families as JSON, for its parent under `serve --workers N`: GET
/metrics/families?name[]=... on the worker's private admin socket, and the parent's reading of it.

Why not the text of GET /metrics?name[]=...: the console samples four families every 10 s, and with
50 routes the duration histogram alone is ~120 KB of text, which prometheus_client's text parser reads
in ~20 ms per worker on the parent's event loop. The same samples as JSON cost the worker a collect()
and a json.dumps, and the parent a json.loads: a few milliseconds in all. `name[]` names samples, as
prometheus_client's exposition understands it (registry.restricted_registry): strangler_requests_total,
not strangler_requests. Timestamps and exemplars are not carried (the proxy sets neither).
Owns the encoding both ways and the worker's handler; what the parent does with them is fanmetrics.py's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from strangler_common.web import Handler

__all__ = ["NAME_PARAM", "decode", "encode", "families_handler"]

NAME_PARAM = "name[]"


def encode(families: Iterable[Metric]) -> dict[str, Any]:
    return {"families": [
        {"name": family.name, "help": family.documentation, "type": family.type,
         "samples": [[sample.name, sample.labels, sample.value] for sample in family.samples]}
        for family in families
    ]}  # fmt: skip


def decode(body: object) -> list[Metric]:
    """The families `encode` wrote; ValueError when `body` is not that."""
    try:
        families = []
        for entry in body["families"]:  # type: ignore[index]  # any shape: a wrong one raises below
            family = Metric(str(entry["name"]), str(entry["help"]), str(entry["type"]))
            family.samples = [Sample(str(name), _labels(labels), float(value))
                              for name, labels, value in entry["samples"]]  # fmt: skip
            families.append(family)
        return families
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not metric families: {exc}") from exc


def _labels(labels: object) -> dict[str, str]:
    if not isinstance(labels, dict):
        raise TypeError("labels are not an object")
    return {str(key): str(value) for key, value in labels.items()}


def families_handler(registry: CollectorRegistry) -> Handler:
    """GET /metrics/families?name[]=...: the samples so named (none without a name), as JSON."""

    async def families(request: web.Request) -> web.StreamResponse:
        names = request.query.getall(NAME_PARAM, [])
        return web.json_response(encode(registry.restricted_registry(names).collect()))

    return families
