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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import structlog
from multidict import CIMultiDict
from yarl import URL

from proxy.client import classify, client_timeout, settle
from proxy.resilience.breaker import CircuitBreaker
from proxy.resilience.memory import Hold
from proxy.routing import UpstreamSpec
from proxy.shadow.compare import Answer

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


def answer_headers(raw: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ', ' (as HTTP allows for comparison)."""
    out: dict[str, str] = {}
    for name, value in raw.items():
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
    except (aiohttp.ClientError, OSError) as exc:  # (a TimeoutError of the whole copy is an OSError)
        if settle(breaker, classify(exc)) == "open":
            # Once per opening, not once per copy: the skipped copies are counted as `error`.
            _log.warning("shadow_candidate_unreachable", route=copy.route, upstream=spec.name)
        raise
    except BaseException as exc:
        settle(breaker, exc)
        raise
    if settle(breaker, None) == "closed":
        _log.info("shadow_candidate_reachable", route=copy.route, upstream=spec.name)
    return result


async def exchange(
    owner: Shadower, spec: UpstreamSpec, copy: Copy, *, role: str | None
) -> tuple[Answer, float]:
    """The answer and the seconds it took; with a role, the duration is also observed as a shadow call."""
    started = time.perf_counter()
    url = spec.url.rstrip("/") + copy.path + (f"?{copy.query}" if copy.query else "")
    timeout = client_timeout(spec.connect_timeout_s, None)  # the whole copy is bounded just below
    try:
        async with asyncio.timeout(copy.timeout_s):
            async with owner.session.request(
                copy.method, URL(url, encoded=True), headers=owner.marked(copy.headers),
                data=copy.body if copy.body or copy.method not in ("GET", "HEAD") else None,
                allow_redirects=False, timeout=timeout,
            ) as response:  # fmt: skip
                chunks, size = [], 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > copy.max_body_bytes:
                        raise TooLarge
                    if not copy.hold.grow(len(chunk)):
                        raise NoMemory
                    chunks.append(chunk)
                answer = Answer(response.status, answer_headers(response.headers), b"".join(chunks))
    finally:
        if role is not None:
            owner.metrics.observe_shadow_call(copy.route, spec.name, time.perf_counter() - started)
    return answer, time.perf_counter() - started
