"""The translation both entry points share: raw request parts in, contract JSON or an ApiError out.

HTTP (aiohttp) and Lambda (API Gateway events) differ only in how they receive and send; the rules
of the contract (media type, body size, validation, headers, status codes) live here once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imageservice.domain.errors import DomainError, Overloaded, RateLimited
from imageservice.domain.model import Generation, GenerationRequest, Size
from imageservice.metrics import ServiceMetrics
from imageservice.services import GenerationService
from imageservice.settings import MAX_BODY_BYTES
from strangler_common.contract import InvalidRequest, parse_generate_request
from strangler_common.shadowmark import SHADOW_HEADER, ShadowGate
from strangler_common.web import REQUEST_ID_HEADER

__all__ = [
    "ApiError",
    "Created",
    "from_domain",
    "get_file",
    "get_generation",
    "list_generations",
    "parse_body",
    "parse_limit",
    "post_images",
    "reject",
]

FILES_PATH = "/api/images/files/"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255

_STATUS = {
    "invalid_request": 400,
    "not_found": 404,
    "in_progress": 409,
    "idempotency_key_reused": 422,
    "content_policy": 422,
    "rate_limited": 429,
    "generator_error": 502,
    "generator_unavailable": 503,
    "overloaded": 503,
    "storage_unavailable": 503,
    # Our credentials lack an IAM permission: a misconfiguration no retry fixes, so 500 and not the
    # "try again later" of 503 (still a 5xx: the proxy's guard and fallback treat it as a failure).
    "storage_permission_denied": 500,
    "generator_timeout": 504,
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Created:
    body: dict[str, Any]
    headers: dict[str, str]


def from_domain(exc: DomainError) -> ApiError:
    headers: dict[str, str] = {}
    if isinstance(exc, Overloaded | RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return ApiError(_STATUS.get(exc.code, 500), exc.code, exc.message, headers)


def generation_json(generation: Generation) -> dict[str, Any]:
    return {
        "id": generation.id,
        "created": generation.created,
        "prompt": generation.prompt,
        "size": str(generation.size),
        "images": [
            {
                "name": image.name,
                "url": FILES_PATH + image.name,
                "content_type": image.content_type,
                "width": image.width,
                "height": image.height,
                "bytes": image.bytes,
                "sha256": image.sha256,
            }
            for image in generation.images
        ],
    }


def reject(metrics: ServiceMetrics, status: int, code: str, message: str) -> ApiError:
    metrics.rejected.labels(reason=code).inc()
    return ApiError(status, code, message)


def parse_body(metrics: ServiceMetrics, body: bytes, content_type: str | None) -> GenerationRequest:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json" and not (mime.startswith("application/") and mime.endswith("+json")):
        raise reject(
            metrics, 415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)"
        )
    if len(body) > MAX_BODY_BYTES:
        raise reject(metrics, 413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise reject(metrics, 400, "invalid_request", "the body is not valid JSON") from None
    try:
        params = parse_generate_request(payload)
        return GenerationRequest(prompt=params.prompt, n=params.n, size=Size.parse(params.size))
    except InvalidRequest as exc:
        raise reject(metrics, 400, "invalid_request", str(exc)) from None
    except DomainError as exc:
        raise reject(metrics, 400, "invalid_request", exc.message) from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


async def post_images(
    service: GenerationService,
    *,
    body: bytes,
    content_type: str | None,
    headers: Mapping[str, str],
    gate: ShadowGate,
) -> Created:
    """`gate` says whether this is the proxy's signed shadow copy (generate, store nothing, claim no
    key); an unsigned or forged marker makes a normal request, and nothing in the answer says so."""
    request = parse_body(service.metrics, body, content_type)
    key = _header(headers, "Idempotency-Key")
    if key is not None and not (1 <= len(key) <= MAX_KEY_CHARS and key.isprintable()):
        raise reject(
            service.metrics, 400, "invalid_request", "Idempotency-Key: must be 1 to 255 printable characters"
        )
    shadow = gate.is_shadow(_header(headers, SHADOW_HEADER), _header(headers, REQUEST_ID_HEADER))
    try:
        outcome = await service.generate(request, idempotency_key=None if shadow else key, shadow=shadow)
    except DomainError as exc:
        raise from_domain(exc) from None
    extra = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    return Created(generation_json(outcome.generation), extra)


async def get_generation(service: GenerationService, generation_id: str) -> dict[str, Any]:
    try:
        return generation_json(await service.get(generation_id))
    except DomainError as exc:
        raise from_domain(exc) from None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise ApiError(400, "invalid_request", "limit: must be an integer between 1 and 100")
    return limit


async def list_generations(service: GenerationService, raw_limit: str | None) -> dict[str, Any]:
    limit = parse_limit(raw_limit)
    try:
        return {"items": [generation_json(g) for g in await service.list_recent(limit)]}
    except DomainError as exc:
        raise from_domain(exc) from None


async def get_file(service: GenerationService, name: str) -> bytes:
    try:
        return await service.file(name)
    except DomainError as exc:
        raise from_domain(exc) from None
