"""The OpenAI generator: the official SDK (`AsyncOpenAI`), base64 PNG output, errors mapped to the contract.

Sizes: GPT image models render 1024x1024 (and wider/taller shapes) but the small legacy sizes are not
guaranteed, so every contract size is requested as 1024x1024 and scaled down with Pillow (Lanczos)
when a smaller one was asked for. Retries are ours, not the SDK's (its `max_retries` is 0), because a
429 for `insufficient_quota` must not be retried and the SDK cannot tell it from a rate limit.
Timeouts are not retried: the caller has already waited the whole budget once.
The API key is never logged; the OpenAI request id (`x-request-id`) is, on success and on failure, and
our X-Request-ID is sent upstream as `X-Client-Request-Id`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import openai
import structlog
from openai.types import ImagesResponse
from PIL import Image, UnidentifiedImageError

from imageservice.domain.errors import (
    ContentPolicy,
    GeneratorFailure,
    GeneratorTimeout,
    GeneratorUnavailable,
    RateLimited,
)
from imageservice.domain.model import GeneratedImage, GenerationRequest, Size

__all__ = ["OpenAIGenerator", "OpenAISettings"]

UPSTREAM_SIZE = {"256x256": "1024x1024", "512x512": "1024x1024", "1024x1024": "1024x1024"}
_POLICY_CODES = {"moderation_blocked", "content_policy_violation"}
_log = structlog.get_logger("imageservice.openai")


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    model: str
    timeout_s: float = 120.0
    max_retries: int = 2
    max_retry_wait_s: float = 20.0  # a longer Retry-After is handed to our caller instead of waited out
    backoff_s: float = 0.5


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _client_request_id() -> dict[str, str]:
    """Our request id travels upstream (OpenAI logs it as X-Client-Request-Id) so one id spans both."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"X-Client-Request-Id": str(request_id)} if request_id else {}


def _is_quota(exc: openai.APIStatusError) -> bool:
    return "insufficient_quota" in {exc.code, exc.type}


def fit_png(png: bytes, size: Size) -> GeneratedImage:
    """Decode what the API returned, scale it to the contract size if needed, and hand back a PNG."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            if image.size == (size.width, size.height) and image.format == "PNG":
                return GeneratedImage(png, size.width, size.height)
            fitted = image.convert("RGBA" if "A" in image.getbands() else "RGB").resize(
                (size.width, size.height), Image.Resampling.LANCZOS
            )
    except (UnidentifiedImageError, OSError) as exc:
        raise GeneratorFailure("the generator returned something that is not an image") from exc
    out = io.BytesIO()
    fitted.save(out, format="PNG")
    return GeneratedImage(out.getvalue(), size.width, size.height)


class OpenAIGenerator:
    def __init__(self, client: openai.AsyncOpenAI, settings: OpenAISettings) -> None:
        self._client = client
        self._settings = settings

    @property
    def name(self) -> str:
        return "openai"

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        encoded = await self._call(request)
        try:
            pngs = [base64.b64decode(item, validate=True) for item in encoded]
        except (binascii.Error, ValueError) as exc:
            raise GeneratorFailure("the generator returned undecodable image data") from exc
        return await asyncio.to_thread(lambda: [fit_png(png, request.size) for png in pngs])

    async def _call(self, request: GenerationRequest) -> list[str]:
        settings = self._settings
        for attempt in range(settings.max_retries + 1):
            last = attempt == settings.max_retries
            try:
                response = await self._client.images.generate(
                    model=settings.model,
                    prompt=request.prompt,
                    n=request.n,
                    size=UPSTREAM_SIZE[str(request.size)],
                    output_format="png",
                    timeout=settings.timeout_s,
                    extra_headers=_client_request_id(),
                )
            except openai.APITimeoutError as exc:
                _log.warning("openai_timeout", timeout_s=settings.timeout_s)
                raise GeneratorTimeout("the image generator did not answer in time") from exc
            except openai.RateLimitError as exc:
                self._log_failure(exc, attempt)
                if _is_quota(exc):
                    raise GeneratorUnavailable("the image generator's quota is exhausted") from exc
                wait = _retry_after_s(exc.response.headers)
                if not last and (wait is None or wait <= settings.max_retry_wait_s):
                    await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
                    continue
                raise RateLimited(
                    "the image generator is rate limited; retry later",
                    retry_after_s=max(1, math.ceil(wait or 1)),
                ) from exc
            except openai.BadRequestError as exc:
                self._log_failure(exc, attempt)
                if exc.code in _POLICY_CODES or exc.type in _POLICY_CODES:
                    raise ContentPolicy("the prompt was refused by the generator's content policy") from exc
                raise GeneratorFailure("the image generator refused the request") from exc
            except openai.APIStatusError as exc:
                self._log_failure(exc, attempt)
                if exc.status_code >= 500 and not last:
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                raise GeneratorFailure(
                    f"the image generator failed (upstream status {exc.status_code})"
                ) from exc
            except openai.APIConnectionError as exc:
                _log.warning("openai_connection_error", attempt=attempt + 1)
                if not last:
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                raise GeneratorFailure("the image generator could not be reached") from exc
            return self._encoded(response, request.n)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _encoded(self, response: ImagesResponse, n: int) -> list[str]:
        """The base64 images of an answer; exactly `n` of them, or GeneratorFailure."""
        data = response.data or []
        _log.info(
            "openai_generated",
            openai_request_id=response._request_id,
            images=len(data),
            model=self._settings.model,
        )
        encoded = [item.b64_json for item in data if item.b64_json]
        if len(encoded) != n:
            raise GeneratorFailure(f"the image generator returned {len(encoded)} images instead of {n}")
        return encoded

    def _backoff(self, attempt: int) -> float:
        return float(self._settings.backoff_s * 2**attempt * (1 - 0.25 * random.random()))  # noqa: S311

    @staticmethod
    def _log_failure(exc: openai.APIStatusError, attempt: int) -> None:
        _log.warning(
            "openai_error",
            status=exc.status_code,
            code=exc.code,
            type=exc.type,
            openai_request_id=exc.request_id,
            attempt=attempt + 1,
        )
