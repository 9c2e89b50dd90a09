"""Shadow mode (parallel run): mirror a primary-served request to the candidate, compare, count, keep.

Owns: Shadower (one per app: the shadow ClientSession, the in-flight bounds, the noise memory, the
mismatch store, the running shadow tasks) and ShadowCall (one mirrored request). Owns no decision:
the route's compiled ShadowPolicy says what to mirror (shadow_policy.py), compare.py says what differs.

The client never waits for the candidate. forwarding.forward() tees what it streams into the call
(request chunks, then the primary's answer) without awaiting anything here; the buffers stop at
`max_body_bytes` (the shadow is then skipped and counted). The candidate is called in its own task,
with its own timeout, as soon as the request body is complete; the comparison runs in that task
after both answers are complete. Every request a shadowed route serves from its primary ends with
exactly one `strangler_shadow_requests_total` outcome.

A dead candidate must not cost the proxy work on every request either: the Shadower keeps its own
circuit breaker per candidate (breaker.py, default policy). After consecutive connection failures the
copies are not even started (outcome `error`, counted) until a probe after the back-off gets through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Literal

import aiohttp
import structlog
from multidict import CIMultiDict
from yarl import URL

from proxy.metrics import ProxyMetrics
from proxy.resilience.breaker import BreakerPolicy, Breakers, CircuitBreaker
from proxy.resilience.memory import Budget, Hold
from proxy.routing import CompiledRoute, RouteTable, UpstreamSpec
from proxy.shadow.budget import TokenBucket
from proxy.shadow.compare import Answer, Difference, compare
from proxy.shadow.mismatches import Mismatch, MismatchStore
from proxy.shadow.noise import NoiseMemory
from proxy.shadow.policy import ShadowPolicy, compile_shadow
from strangler_common.shadowmark import SHADOW_HEADER, sign

Outcome = Literal[
    "compared", "sampled_out", "skipped_method", "skipped_body", "skipped_budget", "skipped_memory",
    "dropped_full", "error", "timeout",
]
_SHADOW_BREAKER = BreakerPolicy()  # 5 connection failures, then 5 s doubling up to 60 s
_BIG = 64 * 1024  # comparing bodies larger than this runs in a thread, not on the event loop
_log = structlog.get_logger("proxy.shadow.mirror")


class _Refused(Exception):
    """The candidate's shadow breaker said no: nothing was sent."""


class _TooLarge(Exception):
    pass


class _NoMemory(Exception):
    """The memory budget could not hold more of a shadow answer."""


def answer_headers(raw: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ', ' (as HTTP allows for comparison)."""
    out: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class Shadower:
    def __init__(
        self, metrics: ProxyMetrics, *, store: MismatchStore | None = None, key: bytes | None = None,
        memory: Budget | None = None,
    ) -> None:  # fmt: skip
        self.metrics = metrics
        # Every buffered byte of a copy (request, both answers) is taken from the process's memory
        # budget first; a copy that does not fit is skipped (skipped_memory), never grown past it.
        self.memory = memory if memory is not None else Budget(64 * 1024 * 1024)
        self.store = store or MismatchStore()
        self.noise = NoiseMemory()
        self.key = key  # signs the marker; None: copies go unmarked and the candidate stores them
        self.in_flight: dict[str, int] = {}
        self._budgets: dict[str, tuple[int, TokenBucket]] = {}  # route -> (max_per_minute, its bucket)
        # route -> its compiled shadow policy, for the table being served (follow() keeps it in step)
        self.policies: dict[str, ShadowPolicy] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._breakers = Breakers(clock=time.monotonic)  # the shadow path's own, not the live traffic's

    def breaker(self, upstream: UpstreamSpec) -> CircuitBreaker:
        return self._breakers.for_upstream(upstream.name, upstream.url, _SHADOW_BREAKER)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Its own pool: shadow traffic never takes connections from the candidate's real traffic.
            self._session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True),
            )  # fmt: skip
        return self._session

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def begin(
        self,
        route: CompiledRoute,
        *,
        method: str,
        sample_key: str,
        request_id: str,
        path: str,
        query: str,
        headers: CIMultiDict[str],
        content_length: int | None,
        candidate: UpstreamSpec,
        primary: UpstreamSpec,
    ) -> ShadowCall | None:
        """A ShadowCall to tee the exchange into, or None (the skip is already counted)."""
        policy = self.policies.get(route.name)
        if policy is None:
            return None
        skip: Outcome | None = policy.skip_reason(method, sample_key)
        if skip is None and content_length is not None and content_length > policy.max_body_bytes:
            skip = "skipped_body"
        if skip is None and self.in_flight.get(route.name, 0) >= policy.max_in_flight:
            skip = "dropped_full"
        if skip is None and self.breaker(candidate).refusing():
            skip = "error"  # the candidate is known to be unreachable: do not even buffer a copy
        if skip is None and policy.max_per_minute is not None and not self._spend(route.name, policy):
            skip = "skipped_budget"  # last: a token is spent only on a copy that is really sent
        if skip is not None:
            self.metrics.shadow_outcome(route.name, skip)
            return None
        self.in_flight[route.name] = self.in_flight.get(route.name, 0) + 1
        return ShadowCall(self, route.name, policy, method=method, request_id=request_id, path=path,
                          query=query, headers=headers, candidate=candidate, primary=primary)  # fmt: skip

    def _spend(self, route: str, policy: ShadowPolicy) -> bool:
        limit = policy.max_per_minute
        assert limit is not None
        now = time.monotonic()
        known = self._budgets.get(route)
        if known is None or known[0] != limit:  # a reload that changes the budget starts a full bucket
            known = self._budgets[route] = (limit, TokenBucket(limit, now=now))
        return known[1].take(now)

    def marked(self, headers: CIMultiDict[str]) -> CIMultiDict[str]:
        """The copy's headers: the client's (internal headers already stripped) plus, with a key, the
        signed marker for this moment. Without a key the copy goes as a normal request."""
        out = CIMultiDict(headers)
        if self.key is not None:
            out[SHADOW_HEADER] = sign(self.key, out.get("X-Request-ID", ""), now=time.time())
        return out

    def release(self, route: str) -> None:
        left = self.in_flight.get(route, 0) - 1
        if left > 0:
            self.in_flight[route] = left
        else:
            self.in_flight.pop(route, None)

    def follow(self, table: RouteTable) -> list[str]:
        """After a (re)load: noise learned under a changed comparison goes, budgets of gone routes go.
        Returns the routes whose noise was dropped."""
        shadowed = table.shadowed.items()
        compiled = {name: compile_shadow(route.shadow, salt=route.salt) for name, route in shadowed}
        self.policies = {name: policy for name, policy in compiled.items() if policy is not None}
        for name in [name for name in self._budgets if name not in self.policies]:
            del self._budgets[name]
        return self.noise.follow({name: policy.noise_fingerprint for name, policy in self.policies.items()})


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
        if self._done or self._request is None or self._task is not None:
            return
        body, self._request = b"".join(self._request), None
        self._task = asyncio.get_running_loop().create_task(self._run(body))
        self.owner.tasks.add(self._task)
        self._task.add_done_callback(self.owner.tasks.discard)

    def response_head(self, status: int, headers: Mapping[str, str]) -> None:
        self._status, self._response_headers = status, answer_headers(headers)

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
        """The handler is done: whatever did not complete (primary failed, client gone) ends here."""
        if not self._done and not self._primary.done():
            self._finish(outcome)

    # -- the shadow task ----------------------------------------------------------------------------

    def _out_of_memory(self) -> None:
        self.owner.metrics.buffer_refused("shadow")
        self._finish("skipped_memory")

    def _finish(self, outcome: Outcome) -> None:
        if self._done:
            return
        self._done = True
        self._request, self._response = None, []
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
        except _Refused:
            self._finish("error")
            return
        except _TooLarge:
            self._finish("skipped_body")
            return
        except _NoMemory:
            self._out_of_memory()
            return
        except TimeoutError:
            self._finish("timeout")
            return
        except (aiohttp.ClientError, OSError, ValueError) as exc:
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
            store.record(Mismatch(
                at=time.time(), route=self.route, request_id=self.request_id, method=self.method,
                path=self.path, differences=tuple(real), noise=tuple(noise),
                primary=store.view(answer, primary_s), candidate=store.view(candidate, candidate_s),
            ), keep=self.policy.keep_mismatches)  # fmt: skip
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
        except (_TooLarge, _NoMemory, TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            _log.info("shadow_noise_call_failed", route=self.route, error=type(exc).__name__)
            return
        learned = self.owner.noise.learn(
            self.route, await self._compare(primary, again), fingerprint=self.policy.noise_fingerprint,
            at=time.time(),
        )
        if learned:
            _log.info("shadow_noise_learned", route=self.route, paths=learned)

    async def _fetch(
        self, spec: UpstreamSpec, body: bytes, *, role: str | None, breaker: CircuitBreaker | None = None
    ) -> tuple[Answer, float]:
        if breaker is None:
            return await self._exchange(spec, body, role=role)
        allowed, _ = breaker.allow()
        if not allowed:  # half-open with its probe still out: the others are not sent
            raise _Refused
        try:
            result = await self._exchange(spec, body, role=role)
        except (TimeoutError, asyncio.CancelledError, _TooLarge, _NoMemory):
            breaker.abandon()  # slow or cut short says nothing about whether it can be reached
            raise
        except (aiohttp.ClientConnectionError, OSError):
            if breaker.failure() == "open":
                # Once per opening, not once per copy: the skipped copies are counted as `error`.
                _log.warning("shadow_candidate_unreachable", route=self.route, upstream=spec.name)
            raise
        except BaseException:
            breaker.abandon()
            raise
        if breaker.success() == "closed":
            _log.info("shadow_candidate_reachable", route=self.route, upstream=spec.name)
        return result

    async def _exchange(self, spec: UpstreamSpec, body: bytes, *, role: str | None) -> tuple[Answer, float]:
        started = time.perf_counter()
        url = spec.url.rstrip("/") + self.path + (f"?{self.query}" if self.query else "")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=spec.connect_timeout_s)
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                async with self.owner.session.request(
                    self.method, URL(url, encoded=True), headers=self.owner.marked(self.headers),
                    data=body if body or self.method not in ("GET", "HEAD") else None,
                    allow_redirects=False, timeout=timeout,
                ) as response:  # fmt: skip
                    chunks, size = [], 0
                    async for chunk in response.content.iter_any():
                        size += len(chunk)
                        if size > self.policy.max_body_bytes:
                            raise _TooLarge
                        if not self.hold.grow(len(chunk)):
                            raise _NoMemory
                        chunks.append(chunk)
                    answer = Answer(response.status, answer_headers(response.headers), b"".join(chunks))
        finally:
            if role is not None:
                self.owner.metrics.observe_shadow_call(self.route, spec.name, time.perf_counter() - started)
        return answer, time.perf_counter() - started
