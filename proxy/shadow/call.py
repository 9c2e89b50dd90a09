"""One mirrored request (ShadowCall): the tee that forwarding.forward() feeds, the shadow task that
calls the candidate once the client has the primary's whole answer (start), the comparison, and exactly
one `strangler_shadow_requests_total` outcome per copy.

Owns: ShadowCall and the Outcome names. Does not own the HTTP exchanges (exchange.py), the bounds,
budgets, session and breakers shared by every copy (mirror.py: Shadower), nor what differs (compare.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import structlog
from multidict import CIMultiDict

from proxy.client import UpstreamError
from proxy.resilience.breaker import CircuitBreaker
from proxy.resilience.memory import Hold
from proxy.routing import UpstreamSpec
from proxy.shadow.compare import Answer, Difference, compare
from proxy.shadow.exchange import Copy, NoMemory, Refused, TooLarge, answer_headers, fetch
from proxy.shadow.mismatches import Mismatch
from proxy.shadow.policy import ShadowPolicy

if TYPE_CHECKING:
    from proxy.shadow.mirror import Shadower

__all__ = ["Outcome", "ShadowCall"]

Outcome = Literal[
    "compared", "sampled_out", "skipped_method", "skipped_body", "skipped_budget", "skipped_memory",
    "dropped_full", "error", "timeout",
]
_BIG = 64 * 1024  # comparing bodies larger than this runs in a thread, not on the event loop
_log = structlog.get_logger("proxy.shadow.mirror")


class ShadowCall:
    """One mirrored request. forwarding.forward() feeds it; it never blocks the primary path."""

    def __init__(
        self, owner: Shadower, route: str, policy: ShadowPolicy, *, method: str, request_id: str,
        path: str, query: str, headers: CIMultiDict[str], candidate: UpstreamSpec, primary: UpstreamSpec,
    ) -> None:  # fmt: skip
        self.owner, self.route, self.policy = owner, route, policy
        self.method, self.request_id, self.path, self.query = method, request_id, path, query
        self.headers, self.candidate, self.primary = headers, candidate, primary
        self.started = time.perf_counter()
        self.hold = Hold(owner.memory)  # given back when the copy ends (_run) or is skipped (_finish)
        self._request: list[bytes] | None = []
        self._body: bytes | None = None  # the whole request body, once complete, until the copy starts
        self._request_size = 0
        self._response: list[bytes] = []
        self._response_size = 0
        self._status = 0
        self._response_headers: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        self._primary: asyncio.Future[tuple[Answer, float] | None] = loop.create_future()
        self._task: asyncio.Task[None] | None = None
        self._done = False  # the outcome is counted and the in-flight slot is (or will be) released

    # -- the tee, called by forwarding.forward (synchronous, cheap) --------------------------------

    def request_chunk(self, chunk: bytes) -> None:
        if self._done or self._request is None:
            return
        self._request_size += len(chunk)
        if self._request_size > self.policy.max_body_bytes:
            self._finish("skipped_body")
        elif not self.hold.grow(len(chunk)):
            self._out_of_memory()
        else:
            self._request.append(chunk)

    def request_complete(self) -> None:
        if self._done or self._request is None:
            return
        self._body, self._request = b"".join(self._request), None

    def start(self) -> None:
        """The client has its whole answer: only now is the copy sent, so mirroring never competes with
        the request it mirrors. Nothing happens when the copy was skipped or either side is incomplete."""
        if self._done or self._body is None or not self._primary.done() or self._task is not None:
            return
        body, self._body = self._body, None
        self._task = asyncio.get_running_loop().create_task(self._run(body))
        self.owner.tasks.add(self._task)
        self._task.add_done_callback(self.owner.tasks.discard)

    def response_head(self, status: int, headers: Mapping[str, str]) -> None:
        self._status, self._response_headers = status, answer_headers(headers.items())

    def response_chunk(self, chunk: bytes) -> None:
        if self._done:
            return
        self._response_size += len(chunk)
        if self._response_size > self.policy.max_body_bytes:
            self._finish("skipped_body")
        elif not self.hold.grow(len(chunk)):
            self._out_of_memory()
        else:
            self._response.append(chunk)

    def response_complete(self) -> None:
        if self._done or self._primary.done():
            return
        answer = Answer(self._status, self._response_headers, b"".join(self._response))
        self._response = []
        self._primary.set_result((answer, time.perf_counter() - self.started))

    def close(self, outcome: Outcome = "error") -> None:
        """The handler is done: a copy whose two inputs are complete starts now if it has not yet;
        whatever did not complete (primary failed, client gone) ends here."""
        if self._done or self._task is not None:
            return
        if self._primary.done() and self._body is not None:
            self.start()
        else:
            self._finish(outcome)

    # -- the shadow task ----------------------------------------------------------------------------

    def _out_of_memory(self) -> None:
        self.owner.metrics.buffer_refused("shadow")
        self._finish("skipped_memory")

    def _finish(self, outcome: Outcome) -> None:
        if self._done:
            return
        self._done = True
        self._request, self._response, self._body = None, [], None
        self.owner.metrics.shadow_outcome(self.route, outcome)
        if not self._primary.done():
            self._primary.set_result(None)
        if self._task is None:
            self.owner.release(self.route)
            self.hold.close()
        elif outcome in ("skipped_body", "skipped_memory") and not self._task.done():
            self._task.cancel()

    async def _run(self, body: bytes) -> None:
        try:
            await self._mirror(body)
        except asyncio.CancelledError:
            self._finish("error")  # app shutdown or a skip decided elsewhere (already counted then)
            raise
        except Exception:  # a bug here must never reach the client or kill the loop
            _log.exception("shadow_failed", route=self.route, request_id=self.request_id)
            self._finish("error")
        finally:
            self.owner.release(self.route)
            self.hold.close()

    async def _mirror(self, body: bytes) -> None:
        try:
            candidate, candidate_s = await self._fetch(
                self.candidate, body, role="shadow", breaker=self.owner.breaker(self.candidate)
            )
        except Refused:
            self._finish("error")
            return
        except TooLarge:
            self._finish("skipped_body")
            return
        except NoMemory:
            self._out_of_memory()
            return
        except TimeoutError:
            self._finish("timeout")
            return
        except UpstreamError as exc:
            _log.info("shadow_error", route=self.route, request_id=self.request_id, kind=exc.kind)
            self._finish("timeout" if exc.timeout else "error")
            return
        except (OSError, ValueError) as exc:
            _log.info("shadow_error", route=self.route, request_id=self.request_id, error=type(exc).__name__)
            self._finish("error")
            return
        primary = await self._primary
        if primary is None or self._done:
            return
        answer, primary_s = primary
        if self.policy.wants_noise_sample(self.method, self.request_id):
            await self._learn_noise(answer, body)
        differences = await self._compare(answer, candidate)
        real, noise = self.owner.noise.split(self.route, differences)
        metrics = self.owner.metrics
        metrics.shadow_compared(self.route, real=[d.kind for d in real], noise=bool(noise),
                                latency_ratio=candidate_s / primary_s if primary_s > 0 else None)  # fmt: skip
        self._finish("compared")
        if real:
            store = self.owner.store
            self.owner.keep_mismatch(Mismatch(
                at=time.time(), route=self.route, request_id=self.request_id, method=self.method,
                path=self.path, differences=tuple(real), noise=tuple(noise),
                primary=store.view(answer, primary_s), candidate=store.view(candidate, candidate_s),
                user_key=self.owner.user_key(self.policy, self.headers, self.query),
            ), self.policy, answer, candidate)  # fmt: skip
            _log.info("shadow_mismatch", route=self.route, request_id=self.request_id,
                      differences=[d.detail for d in real[:5]])  # fmt: skip

    async def _compare(self, primary: Answer, candidate: Answer) -> list[Difference]:
        if len(primary.body) + len(candidate.body) > _BIG:
            return await asyncio.to_thread(compare, primary, candidate, self.policy.compare)
        return compare(primary, candidate, self.policy.compare)

    async def _learn_noise(self, primary: Answer, body: bytes) -> None:
        """A/A: the primary again; whatever differs between its two answers is noise."""
        try:
            again, _ = await self._fetch(self.primary, body, role=None)
        except (TooLarge, NoMemory, TimeoutError, UpstreamError, OSError, ValueError) as exc:
            _log.info("shadow_noise_call_failed", route=self.route, error=type(exc).__name__)
            return
        learned = self.owner.noise.learn(
            self.route, await self._compare(primary, again), fingerprint=self.policy.noise_fingerprint,
            at=time.time(),
        )
        if learned:
            _log.info("shadow_noise_learned", route=self.route, paths=learned)

    def _copy(self, body: bytes) -> Copy:
        return Copy(route=self.route, method=self.method, path=self.path, query=self.query,
                    headers=self.headers, body=body, timeout_s=self.policy.timeout_s,
                    max_body_bytes=self.policy.max_body_bytes, hold=self.hold)  # fmt: skip

    async def _fetch(
        self, spec: UpstreamSpec, body: bytes, *, role: str | None, breaker: CircuitBreaker | None = None
    ) -> tuple[Answer, float]:
        return await fetch(self.owner, spec, self._copy(body), role=role, breaker=breaker)
