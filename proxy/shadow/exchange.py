"""One shadow HTTP exchange: a copy of the client's request sent to one upstream (the candidate, through
the shadow path's own breaker, or the primary again to learn noise), its answer read into memory under
the body limit and the memory budget.

Owns: Copy (what every call of one mirrored request sends), the reasons an exchange stops short
(Refused, TooLarge, NoMemory), answer_headers(), fetch() and exchange(). Does not own what is
compared, counted or kept (call.py), nor the session, the marker or the breakers (mirror.py); a call's
end is booked on its breaker by proxy.client.settle, as on the live path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from multidict import CIMultiDict

from proxy.client import settle
from proxy.resilience.breaker import CircuitBreaker
from proxy.resilience.memory import Hold
from proxy.routing import UpstreamSpec
from proxy.shadow.compare import Answer
from proxy.upstream import text_headers

if TYPE_CHECKING:
    from proxy.shadow.mirror import Shadower

__all__ = ["Copy", "NoMemory", "Refused", "TooLarge", "answer_headers", "exchange", "fetch"]

_log = structlog.get_logger("proxy.shadow.mirror")


class Refused(Exception):
    """The candidate's shadow breaker said no: nothing was sent."""


class TooLarge(Exception):
    pass


class NoMemory(Exception):
    """The memory budget could not hold more of a shadow answer."""


@dataclass(frozen=True, slots=True)
class Copy:
    """One mirrored request, as each of its calls sends it; the buffered answers grow `hold`."""

    route: str
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]  # the client's, internal headers stripped; marked per call
    body: bytes
    timeout_s: float
    max_body_bytes: int
    hold: Hold


def answer_headers(raw: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ', ' (as HTTP allows for comparison)."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


async def fetch(
    owner: Shadower, spec: UpstreamSpec, copy: Copy, *, role: str | None,
    breaker: CircuitBreaker | None = None,
) -> tuple[Answer, float]:  # fmt: skip
    """exchange(), through `breaker` when given: only connection failures count against it (refused or
    reset connections, connect timeouts); slow or cut short says nothing about whether it can be reached."""
    if breaker is None:
        return await exchange(owner, spec, copy, role=role)
    allowed, _ = breaker.allow()
    if not allowed:  # half-open with its probe still out: the others are not sent
        raise Refused
    try:
        result = await exchange(owner, spec, copy, role=role)
    except BaseException as exc:
        if settle(breaker, exc) == "open":
            # Once per opening, not once per copy: the skipped copies are counted as `error`.
            _log.warning("shadow_candidate_unreachable", route=copy.route, upstream=spec.name)
        raise
    if settle(breaker, None) == "closed":
        _log.info("shadow_candidate_reachable", route=copy.route, upstream=spec.name)
    return result


async def exchange(
    owner: Shadower, spec: UpstreamSpec, copy: Copy, *, role: str | None
) -> tuple[Answer, float]:
    """The answer and the seconds it took; with a role, the duration is also observed as a shadow call.
    The whole copy is bounded by its timeout_s (TimeoutError); the upstream's failures are UpstreamError."""
    started = time.perf_counter()
    target = copy.path + "?" + copy.query if copy.query else copy.path
    body = copy.body if copy.body or copy.method not in ("GET", "HEAD") else None
    try:
        async with asyncio.timeout(copy.timeout_s):
            response = await owner.pool(spec).request(
                copy.method, target, list(owner.marked(copy.headers).items()), body,
                connect_timeout_s=spec.connect_timeout_s, read_timeout_s=copy.timeout_s,
            )  # fmt: skip
            async with response:  # released when read whole; closed when cut short
                chunks, size = [], 0
                async for chunk in response.chunks():
                    size += len(chunk)
                    if size > copy.max_body_bytes:
                        raise TooLarge
                    if not copy.hold.grow(len(chunk)):
                        raise NoMemory
                    chunks.append(chunk)
                headers = answer_headers(text_headers(response.headers))
                answer = Answer(response.status, headers, b"".join(chunks))
    finally:
        if role is not None:
            owner.metrics.observe_shadow_call(copy.route, spec.name, time.perf_counter() - started)
    return answer, time.perf_counter() - started
