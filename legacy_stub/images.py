"""The slow image module's HTTP edge: the image API contract (strangler_common/contracts/images.yaml).

POST /api/images, GET /api/images, GET /api/images/{id}, GET /api/images/files/{name}.
Translation only: the worker paints, the gallery keeps, the idempotency table remembers.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from legacy_stub.gallery import CONTENT_TYPE, Generation, build_generation, new_generation_id, parse_size
from legacy_stub.http_io import ApiError, invalid, read_json
from legacy_stub.idempotency import ClaimOutcome, StoredResponse, fingerprint
from legacy_stub.keys import GALLERY, IDEMPOTENCY, METRICS, SETTINGS, SHADOW_GATE, WORKER
from legacy_stub.worker import WorkerOverloaded, WorkerStopped
from strangler_common.contract import GenerateParams, InvalidRequest, parse_generate_request
from strangler_common.shadowmark import SHADOW_HEADER
from strangler_common.web import REQUEST_ID_HEADER

__all__ = ["add_routes"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
_LIMIT = re.compile(r"^[0-9]{1,4}$")


def is_shadow(request: web.Request) -> bool:
    """A copy the proxy mirrors for comparison, signed with the shared key: generate, but keep nothing
    and claim no key. An unsigned or forged marker is a normal request (counted, never answered)."""
    marker = request.headers.get(SHADOW_HEADER)
    return request.app[SHADOW_GATE].is_shadow(marker, request.headers.get(REQUEST_ID_HEADER))


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise invalid(IDEMPOTENCY_HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters long")
    return key


async def _paint(request: web.Request, params: GenerateParams) -> Generation:
    width, height = parse_size(params.size)
    metrics = request.app[METRICS]
    try:
        pngs = await request.app[WORKER].generate(params.prompt, width=width, height=height, n=params.n)
    except WorkerOverloaded as exc:
        metrics.generations.labels(outcome="failed").inc()
        message = f"the image worker is busy: {exc}"
        raise ApiError(503, "overloaded", message, headers={"Retry-After": "5"}) from None
    except WorkerStopped as exc:
        metrics.generations.labels(outcome="failed").inc()
        raise ApiError(503, "unavailable", str(exc)) from None
    except Exception:
        metrics.generations.labels(outcome="failed").inc()
        raise
    return build_generation(
        generation_id=new_generation_id(),
        created=int(time.time()),
        prompt=params.prompt,
        size=params.size,
        pngs=pngs,
    )


def _created(body: dict[str, Any], *, replayed: bool = False) -> web.Response:
    headers = {"Location": f"/api/images/{body['id']}"}
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return web.json_response(body, status=201, headers=headers)


async def generate(request: web.Request) -> web.Response:
    payload = await read_json(request, request.app[SETTINGS].max_image_request_bytes)
    try:
        params = parse_generate_request(payload)
    except InvalidRequest as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    metrics = request.app[METRICS]

    if is_shadow(request):
        generation = await _paint(request, params)
        metrics.generations.labels(outcome="shadow").inc()
        return _created(generation.to_json())

    key = _idempotency_key(request)
    table = request.app[IDEMPOTENCY]
    if key is not None:
        claim = table.claim(key, fingerprint(payload))
        if claim.outcome is ClaimOutcome.REUSED:
            raise ApiError(
                422, "idempotency_key_reused", f"{IDEMPOTENCY_HEADER} was already used with a different body"
            )
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            raise ApiError(
                409, "in_progress", f"a request with this {IDEMPOTENCY_HEADER} is still being generated"
            )
        if claim.outcome is ClaimOutcome.REPLAY and claim.response is not None:
            metrics.idempotent_replays.inc()
            return _created(claim.response.body, replayed=True)
    try:
        generation = await _paint(request, params)
    except BaseException:
        if key is not None:
            table.release(key)  # a failed attempt may be retried with the same key
        raise
    request.app[GALLERY].add(generation)
    metrics.generations.labels(outcome="stored").inc()
    body = generation.to_json()
    if key is not None:
        table.complete(key, StoredResponse(201, body))
    return _created(body)


async def list_generations(request: web.Request) -> web.Response:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not _LIMIT.match(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid("limit", f"must be an integer between 1 and {MAX_LIMIT}")
    items = request.app[GALLERY].newest(int(raw))
    return web.json_response({"items": [generation.to_json() for generation in items]})


async def get_generation(request: web.Request) -> web.Response:
    generation_id = request.match_info["generation_id"]
    generation = request.app[GALLERY].get(generation_id)
    if generation is None:
        raise ApiError(404, "not_found", f"no generation with id {generation_id[:128]!r}")
    return web.json_response(generation.to_json())


async def get_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    image = request.app[GALLERY].file(name)
    if image is None:
        raise ApiError(404, "not_found", f"no image file named {name[:200]!r}")
    return web.Response(
        body=image.data,
        content_type=CONTENT_TYPE,
        headers={"ETag": f'"{image.sha256}"', "Cache-Control": "public, max-age=31536000, immutable"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/images", generate)
    app.router.add_get("/api/images", list_generations)
    app.router.add_get("/api/images/files/{name}", get_file)
    app.router.add_get("/api/images/{generation_id}", get_generation)
